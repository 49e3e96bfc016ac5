#!/usr/bin/env bash
# A real mproxy session on a userland that is not this machine's: Debian 11
# (glibc 2.31) or a root holding nothing but a static busybox (no libc at
# all). mproxy reaches it with `--via "chroot ROOT"`, deploys the agent bundle
# there with nothing installed beforehand, and runs commands through it.
# Exit 77 = skipped, with the reason.
#
# usage: agent_session_test.sh bullseye|busybox MPROXY BUNDLE_DIR
set -uo pipefail

userland=${1:?usage}
mproxy=${2:?usage}
bundle=${3:?usage}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

skip() { echo "SKIPPED: $*"; exit 77; }
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

[ "$(id -u)" -eq 0 ] || skip "chroot needs root"
[ -n "${MPROXY_SANITIZE_BUILD:-}" ] &&
  skip "sanitizer build: the bundle would carry a sanitizer runtime that never ships"
[ -f "$bundle/bundle.sha256" ] || { echo "FAIL: no bundle in $bundle"; exit 1; }
hash=$(cat "$bundle/bundle.sha256")

root=""
home=/mproxy-session-test.$$
cleanup() {
  [ -n "$root" ] && rm -rf "$root$home"
  [ "$userland" = busybox ] && [ -n "$root" ] && rm -rf "$root"
}
trap cleanup EXIT

source "$here/userland.sh"
make_userland_root "$userland"
mkdir -p "$root$home"

# Runs mproxy with a clean environment; stdout, stderr and the exit status
# land in $out, $err and $rc.
run() {
  local input=$1
  shift
  local o e
  o=$(mktemp) e=$(mktemp)
  printf '%s' "$input" | env -i PATH=/usr/bin:/bin HOME="$home" MPROXY_AGENT_BUNDLE="$bundle" \
    "$mproxy" "$@" >"$o" 2>"$e"
  rc=$?
  out=$(cat "$o"; echo x) out=${out%x}
  err=$(cat "$e"; echo x) err=${err%x}
  rm -f "$o" "$e"
}
via=(--via "$(command -v chroot) $root")

# 1. First contact deploys the agent, then the command runs.
run "" --verbose exec "${via[@]}" old -- sh -c 'echo hello; exit 3'
[ "$rc" = 3 ] || fail "first run: exit $rc, want 3 (stderr: $err)"
[ "$out" = $'hello\n' ] || fail "first run: stdout '$out'"
[[ $err == *"uploading agent"* ]] || fail "first run did not upload the agent: $err"
[ -x "$root$home/.cache/mproxy/agent/$hash/mproxy-agent" ] ||
  fail "agent not at ~/.cache/mproxy/agent/$hash"

# 2. The second run finds it and uploads nothing.
run "" --verbose exec "${via[@]}" old -- sh -c 'echo again'
[ "$rc" = 0 ] && [ "$out" = $'again\n' ] || fail "second run: exit $rc, stdout '$out'"
[[ $err != *"uploading agent"* ]] || fail "second run uploaded again: $err"

# 3. stdin reaches the remote command and ends with EOF.
run $'a\nb\nc\n' exec "${via[@]}" old -- wc -l
[ "$rc" = 0 ] && [ "$(echo "$out" | tr -d ' ')" = 3 ] || fail "wc -l: exit $rc, stdout '$out'"

# 4. Exit statuses: a signal is 128+n, a missing command 127 with its message.
run "" exec "${via[@]}" old -- sh -c 'kill -TERM $$'
[ "$rc" = 143 ] || fail "TERM-killed command: exit $rc, want 143"
run "" exec "${via[@]}" old -- no-such-command-here
[ "$rc" = 127 ] || fail "missing command: exit $rc, want 127"
[ "$err" = $'mproxy: no-such-command-here: command not found on old\n' ] ||
  fail "missing command message: '$err'"

# 5. It really ran there.
if [ "$userland" = bullseye ]; then
  run "" exec "${via[@]}" old -- sh -c 'cat /etc/debian_version; ldd --version | head -n 1'
  [[ $out == 11.* ]] || fail "not Debian 11: '$out'"
  [[ $out == *"GLIBC 2.31"* ]] || fail "not glibc 2.31: '$out'"
else
  run "" exec "${via[@]}" old -- sh -c 'ls /lib /lib64 /usr 2>&1; find / -name "libc.so*" ! -path "*/.cache/*"'
  [[ $out == *"No such file or directory"* ]] || fail "busybox root has library dirs: '$out'"
  [[ $out != *libc.so* ]] || fail "busybox root has a libc outside the bundle: '$out'"
fi

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed ($userland)"
