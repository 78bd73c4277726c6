#!/usr/bin/env bash
# Runs the pipc Python module's unittest suite (test/python/test_*.py).
#   scripts/test-python.sh [--unprivileged] [--json FILE] [-v]
# --unprivileged (as root): as uid/gid 65534 via setpriv, in a copy of the
# tree that user owns (as scripts/test-unprivileged.sh). --json FILE: the
# counts for .ci/run. A missing python3 is a failure, never a skip.
set -uo pipefail
cd "$(dirname "$0")/.."
unpriv=0
args=()
json=""
while [ $# -gt 0 ]; do
  case "$1" in
    --unprivileged) unpriv=1 ;;
    --json) json="$2"; shift ;;
    *) args+=("$1") ;;
  esac
  shift
done
py=${PYTHON:-$(command -v python3 || true)}
if [ -z "$py" ]; then
  echo "python3 is missing: the pipc unittest suite cannot run" >&2
  exit 1
fi
if [ "$unpriv" = 0 ]; then
  exec "$py" test/python/run.py ${json:+--json "$json"} "${args[@]}"
fi
if [ "$(id -u)" != 0 ]; then
  exec "$py" test/python/run.py ${json:+--json "$json"} "${args[@]}"
fi
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
dir=$(mktemp -d /tmp/pipc-pytest-unpriv.XXXXXX)
trap 'rm -rf "$dir"' EXIT
tar --exclude=.git --exclude=node_modules -cf - python test/python | tar -xf - -C "$dir"
chown -R 65534:65534 "$dir"
out="$dir/counts.json"
(cd "$dir" && setpriv --reuid=65534 --regid=65534 --clear-groups \
  env HOME="$dir" PATH=/usr/local/bin:/usr/bin:/bin "$py" test/python/run.py --json "$out" "${args[@]}")
status=$?
[ -n "$json" ] && [ -f "$out" ] && cp "$out" "$json"
exit $status
