#!/usr/bin/env bash
# Try mproxy against a real SSH host. With no host, starts a throwaway sshd on
# loopback (scripts/test-sshd.sh) and uses that.
#   scripts/try.sh                      demo against a throwaway loopback sshd
#   scripts/try.sh [user@]host[:port]   demo against your own host
#   scripts/try.sh [HOST] -- PROGRAM    a session: PROGRAM (e.g. bash) runs here,
#                                       the commands it starts run on HOST
# Installs the Debian packages it needs and builds mproxy first.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
host=""
if [ $# -gt 0 ] && [ "$1" != "--" ]; then host="$1"; shift; fi
[ "${1:-}" = "--" ] && shift

"$root/scripts/install-deps.sh" >/dev/null
cmake -S "$root" -B "$root/build" -G Ninja -DMPROXY_WERROR=ON >/dev/null
cmake --build "$root/build" --target mproxy mproxy-shim mproxy-agent agent-bundle >/dev/null
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
  # Not exec: the trap above must still stop the throwaway sshd.
  set +e
  "$mproxy" "${conn[@]}" "$host" -- "$@"
  exit $?
fi

marker="${MPROXY_TEST_SSH_MARKER:-/etc/hostname}"
# The working directory is the workspace (the remote directory of the same
# path). With the throwaway sshd: its remote-only directory; with a host of
# your own: none, since this directory may not exist there.
ws=(--no-workspace)
[ -n "${MPROXY_TEST_SSH_REMOTE_DIR:-}" ] && ws=(-w "$MPROXY_TEST_SSH_REMOTE_DIR")
echo "# A session: bash runs here; every command it starts by name runs on $host."
run "${conn[@]}" "${ws[@]}" "$host" -- bash -c '
  echo "remote cat:     $(cat '"$marker"')"
  if [ -n "'"${MPROXY_TEST_SSH_REMOTE_DIR:-}"'" ]; then
    echo "workspace:      $PWD holds $(/bin/ls) here too (a local ls, by absolute path, reads the remote directory)"
  fi
  echo "pipeline:       $(printf "b\na\nc\n" | sort | head -n1) (printf local, sort and head remote)"
  echo "type sort:      $(type -p sort)"
  uname -sr
  no-such-command-here
  sh -c "exit 42"; echo "exit status:    $?"
  sh -c "kill -TERM \$\$"; echo "killed by TERM: $?"
'
echo
echo "# One command, as with ssh:"
run exec "${conn[@]}" "$host" -- sh -c 'echo "I am $(id -un) in $PWD"; exit 42'
echo "\$ mproxy paths $host | head -5"
# Not a pipe: under pipefail, head leaving early fails mproxy's write (EPIPE)
# and the script with it once the list outgrows the pipe buffer.
paths="$("$mproxy" paths "${conn[@]}" "$host")"
head -5 <<<"$paths"
echo
echo "# Interactive: scripts/try.sh ${1:-} -- bash   (then try vim, top, make ...)"
