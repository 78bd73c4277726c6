#!/usr/bin/env bash
# Runs the whole test suite as an ordinary user (uid/gid 65534, via setpriv),
# because root hides permission problems and the POSIX message-queue limits
# (msg_max 10, msgsize_max 8192, RLIMIT_MSGQUEUE). Must be started as root.
# The tree (with node_modules and the built addon) is copied to a temporary
# folder that user owns; nothing in the checkout changes.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "run as root (it switches to uid 65534); as an ordinary user, plain 'npm test' already is unprivileged" >&2
  exit 2
fi
[ -d node_modules ] && [ -d dist ] || { echo "run 'npm install' first" >&2; exit 2; }
dir=$(mktemp -d /tmp/posix-ipc-unpriv.XXXXXX)
trap 'rm -rf "$dir"' EXIT
tar --exclude=.git -cf - . | tar -xf - -C "$dir"
chown -R 65534:65534 "$dir"
# The unprivileged user cannot enter /root: prefer a python3 it can run.
py=$(command -v python3)
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
cd "$dir"
setpriv --reuid=65534 --regid=65534 --clear-groups \
  env HOME="$dir" PYTHON="$py" PATH=/usr/local/bin:/usr/bin:/bin CI="${CI:-}" \
  "$(command -v node)" node_modules/vitest/vitest.mjs run "$@"
