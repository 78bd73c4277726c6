#!/usr/bin/env bash
# Builds binding.gyp's Debug configuration (ASan + UBSan) in build-asan/, away
# from build/Release, and runs test files against it: by default the
# semaphore, shared memory, pipe, queue and handle tests; pass vitest filters to
# choose others (`npm run test:asan -- test/queue`).
#
# Node itself is not built with ASan, so the runtime is preloaded, and leak
# detection is off: V8 and Node keep allocations alive until exit by design,
# and what this addon holds in JavaScript (references) is not malloc'ed.
# Every ASan or UBSan report aborts the process that made it (a child process
# too: they inherit the environment), so the test that caused it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/build-asan

start=$(date +%s)
mkdir -p "$out/src"
# A copy of the sources so that node-gyp's build/ there is ours alone.
rm -rf "$out/src/native"
cp -a native binding.gyp "$out/src/"
ln -sfn "$root/node_modules" "$out/src/node_modules"
(cd "$out/src" && npx --no-install node-gyp rebuild --debug -j 2 >"$out/build.log" 2>&1) || {
  tail -40 "$out/build.log"
  exit 1
}
npx --no-install tsc -p tsconfig.json
built=$(date +%s)

asan=$(gcc -print-file-name=libasan.so)
[ -e "$asan" ] || { echo "libasan not found (gcc -print-file-name=libasan.so)" >&2; exit 1; }

if [ $# -eq 0 ]; then
  set -- test/sync/semaphore.test.ts test/shm test/pipe test/queue test/core/handles.test.ts
fi
export POSIX_IPC_BINDING=$out/src/build/Debug/posix_ipc.node
export LD_PRELOAD=$asan
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:abort_on_error=1
status=0
npx --no-install vitest run "$@" || status=$?
end=$(date +%s)
echo "test:asan: build $((built - start)) s, tests $((end - built)) s" >&2
exit $status
