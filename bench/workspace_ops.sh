#!/bin/bash
# One timed operation of bench/run_workspace_bench.sh, run on a directory that
# shows the remote data: an sshfs mount, or mproxy's workspace in a session.
#
#   workspace_ops.sh OP DATA OUT TOKEN [EXPECTED] [ARG]
#
# OP is find, ls, git, grep, read or extract; DATA the directory showing the
# remote data; OUT a local directory for the command's output; TOKEN what
# DATA/.wsbench-marker must hold. Prints `OP seconds` and exits 0; prints
# `unavailable REASON` and exits 3 when DATA does not show the remote data;
# prints `failed REASON` and exits 4 when the operation failed or gave a
# result other than EXPECTED (so a wrong or empty view never yields a figure).
#
# Inside an mproxy session a command looked up on PATH runs on the remote
# host. So everything here is a bash builtin or a binary named by its absolute
# path, which stays local: the operations run here, on the mount.
set -u
export LC_ALL=C

[ $# -ge 4 ] || { echo "failed usage: workspace_ops.sh OP DATA OUT TOKEN [EXPECTED] [ARG]"; exit 2; }
op="$1" data="$2" out="$3" token="$4" expected="${5:-}" arg="${6:-}"

unavailable() { echo "unavailable $*"; exit 3; }
failed() { echo "failed $*"; exit 4; }

# Does DATA show the remote side? The marker was written there over ssh.
marker="$data/.wsbench-marker"
if [ ! -e "$marker" ]; then
  if [ -d "$data" ]; then unavailable "$marker not visible (the directory is there, without it)"; fi
  unavailable "$data is not there: an empty or local directory shows instead"
fi
read -r seen <"$marker" || seen=""
[ "$seen" = "$token" ] || unavailable "$marker holds '$seen', not this run's token"

# Microseconds since the epoch, without forking (EPOCHREALTIME is bash 5).
now_us() { REPLY="${EPOCHREALTIME//[!0-9]/}"; }

# Lines in FILE, into REPLY (wc by absolute path: local).
count_lines() {
  local n
  n="$(/usr/bin/wc -l <"$1")" || failed "wc -l $1"
  REPLY="${n//[!0-9]/}"
}

expect_lines() {
  count_lines "$1"
  [ "$REPLY" = "$expected" ] || failed "$op gave $REPLY lines, expected $expected (see $1)"
}

# The binaries come from the local disk, which drop_caches emptied too: load
# them before the clock starts, so that only the filesystem work is timed.
# shellcheck disable=SC2185  # --version, no search
case "$op" in
  find) /usr/bin/find --version >/dev/null ;;
  ls) /bin/ls --version >/dev/null ;;
  git) /usr/bin/git --version >/dev/null ;;
  grep) /bin/grep --version >/dev/null ;;
  read) /bin/dd --version >/dev/null ;;
  extract) /bin/tar --version >/dev/null ;;
  *) failed "unknown operation $op" ;;
esac
/usr/bin/wc --version >/dev/null

rc=0
case "$op" in
  find)
    now_us; t0="$REPLY"
    /usr/bin/find "$data/tree" >"$out/find.out" 2>"$out/find.err" || rc=$?
    now_us; t1="$REPLY"
    [ "$rc" -eq 0 ] || failed "find exited $rc (see $out/find.err)"
    expect_lines "$out/find.out"
    ;;
  ls)
    now_us; t0="$REPLY"
    /bin/ls -lR "$data/tree" >"$out/ls.out" 2>"$out/ls.err" || rc=$?
    now_us; t1="$REPLY"
    [ "$rc" -eq 0 ] || failed "ls -lR exited $rc (see $out/ls.err)"
    expect_lines "$out/ls.out"
    ;;
  git)
    # The files belong to the remote user, hence safe.directory. The index
    # was written on the remote side, where inode numbers and ctimes differ
    # from what any mount shows; checkStat=minimal and trustctime=false make
    # git compare mtime and size only, as it must on a network filesystem,
    # instead of re-reading every file. No optional locks: the timed run
    # must not rewrite the index, or the next run would see another repo.
    export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null HOME="$out"
    export GIT_OPTIONAL_LOCKS=0 GIT_TERMINAL_PROMPT=0
    now_us; t0="$REPLY"
    /usr/bin/git -C "$data/repo" -c safe.directory='*' -c core.checkStat=minimal \
      -c core.trustctime=false status --porcelain >"$out/git.out" 2>"$out/git.err" || rc=$?
    now_us; t1="$REPLY"
    [ "$rc" -eq 0 ] || failed "git status exited $rc (see $out/git.err)"
    [ ! -s "$out/git.out" ] || failed "git status is not clean (see $out/git.out)"
    ;;
  grep)
    # Not to /dev/null: GNU grep stops at the first match when it sees that.
    now_us; t0="$REPLY"
    /bin/grep -rn -e "$arg" "$data/src" >"$out/grep.out" 2>"$out/grep.err" || rc=$?
    now_us; t1="$REPLY"
    [ "$rc" -eq 0 ] || failed "grep -r exited $rc (see $out/grep.err)"
    expect_lines "$out/grep.out"
    ;;
  read)
    now_us; t0="$REPLY"
    /bin/dd if="$data/big" of=/dev/null bs=1M 2>"$out/dd.err" || rc=$?
    now_us; t1="$REPLY"
    [ "$rc" -eq 0 ] || failed "dd exited $rc (see $out/dd.err)"
    bytes=""
    while read -r line; do
      [[ "$line" =~ ^([0-9]+)\ bytes ]] && bytes="${BASH_REMATCH[1]}"
    done <"$out/dd.err"
    [ "$bytes" = "$expected" ] || failed "dd read ${bytes:-?} bytes, expected $expected"
    ;;
  extract)
    # The caller made DATA/extract empty and counts what arrived remotely.
    [ -d "$data/extract" ] || failed "$data/extract missing"
    now_us; t0="$REPLY"
    /bin/tar --no-same-owner -xf "$arg" -C "$data/extract" 2>"$out/tar.err" || rc=$?
    now_us; t1="$REPLY"
    [ "$rc" -eq 0 ] || failed "tar -x exited $rc (see $out/tar.err)"
    ;;
esac

us=$((t1 - t0))
printf '%s %d.%06d\n' "$op" $((us / 1000000)) $((us % 1000000))
