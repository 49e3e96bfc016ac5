#!/usr/bin/env bash
# Try mproxy against a real SSH host. With no host, starts a throwaway sshd on
# loopback (scripts/test-sshd.sh) and uses that.
#   scripts/try.sh                      demo against a throwaway loopback sshd
#   scripts/try.sh [user@]host[:port]   demo against your own host
#   scripts/try.sh [HOST] -- CMD ARGS   run CMD remotely instead of the demo
# Installs the Debian packages it needs and builds mproxy first.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
host=""
if [ $# -gt 0 ] && [ "$1" != "--" ]; then host="$1"; shift; fi
[ "${1:-}" = "--" ] && shift

"$root/scripts/install-deps.sh" >/dev/null
cmake -S "$root" -B "$root/build" -G Ninja -DMPROXY_WERROR=ON >/dev/null
cmake --build "$root/build" --target mproxy mproxy-agent agent-bundle >/dev/null
mproxy="$root/build/broker/mproxy"

conn=()
if [ -z "$host" ]; then
  dir="$(mktemp -d /tmp/mproxy-try.XXXXXX)"
  trap '"$root/scripts/test-sshd.sh" stop "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
  eval "$("$root/scripts/test-sshd.sh" start "$dir")"
  conn=(-F "$MPROXY_TEST_SSH_CONFIG")
  host="$MPROXY_TEST_SSH_ALIAS"
  echo "# throwaway sshd on 127.0.0.1:$MPROXY_TEST_SSH_PORT, user $MPROXY_TEST_SSH_USER;"
  echo "# $MPROXY_TEST_SSH_MARKER exists only on that \"remote\" side"
fi

run() {
  echo "\$ mproxy $*"
  set +e
  "$mproxy" "$@"
  local rc=$?
  set -e
  echo "  (exit status $rc)"
}

if [ $# -gt 0 ]; then
  exec "$mproxy" exec "${conn[@]}" "$host" -- "$@"
fi

run exec "${conn[@]}" "$host" -- uname -sr
run exec "${conn[@]}" "$host" -- sh -c 'echo "I am $(id -un) in $PWD"; exit 42'
if [ -n "${MPROXY_TEST_SSH_MARKER:-}" ]; then
  run exec "${conn[@]}" "$host" -- cat "$MPROXY_TEST_SSH_MARKER"
  echo "\$ cat $MPROXY_TEST_SSH_MARKER   # locally"
  cat "$MPROXY_TEST_SSH_MARKER" 2>&1 || true
fi
echo "\$ printf 'b\\na\\nc\\n' | mproxy exec $host -- sort"
printf 'b\na\nc\n' | "$mproxy" exec "${conn[@]}" "$host" -- sort
run exec "${conn[@]}" "$host" -- sh -c 'kill -TERM $$'
run exec "${conn[@]}" "$host" -- no-such-command
echo "\$ mproxy paths $host | head -5"
"$mproxy" paths "${conn[@]}" "$host" | head -5
