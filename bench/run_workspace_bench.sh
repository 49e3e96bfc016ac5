#!/usr/bin/env bash
# mproxy's workspace (the remote working directory shown here through FUSE)
# side by side with sshfs, on one throwaway loopback sshd.
#
#   bench/run_workspace_bench.sh [BUILD_DIR]        (default: build-bench)
#
# Needs sshfs (Debian package sshfs) and a build with mproxy, mproxy-shim and
# the agent bundle:
#   cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
#   ninja -C build-bench mproxy mproxy-shim agent-bundle
# Run it as root: it then drops the page cache before each measurement and
# grows the sshd's remote tmpfs (64 MiB) to hold the data.
#
# The data is made once on the remote side, over ssh, in DATA =
# MPROXY_TEST_SSH_REMOTE_DIR/wsbench (a tmpfs that only the sshd's sessions
# see; locally the same path is an empty directory), with deterministic
# content: a tree of FILES one-line files (50 a directory), a git repository
# of GIT_FILES small C files (committed and packed remotely), GREP_MB MiB of
# generated C-like text, one BIG_MB MiB file, and an empty directory to
# extract into. Then each operation is timed on two sides:
#   sshfs    `sshfs -F CONFIG mproxy-test:DATA MNT` with sshfs's defaults
#            (SSHFS_OPTS adds options), run on MNT
#   mproxy   `cd MPROXY_TEST_SSH_REMOTE_DIR && mproxy -F CONFIG mproxy-test --
#            /bin/bash bench/workspace_ops.sh ...`: the working directory is
#            the workspace, so inside the session DATA shows the remote data
#            (MPROXY_OPTS adds options, e.g. -v LOCAL:REMOTE)
# by bench/workspace_ops.sh, which calls only local binaries by absolute path
# (inside a session a PATH lookup would run the command remotely) and checks
# both the operation's result and that DATA shows the remote side (a marker
# file written over ssh), so a missing workspace is reported, not timed:
#   find     /usr/bin/find DATA/tree                         (metadata)
#   ls       /bin/ls -lR DATA/tree                           (metadata)
#   git      /usr/bin/git status in DATA/repo                (metadata)
#   extract  /bin/tar -xf of a local tar of EXTRACT_FILES    (metadata)
#            small files into DATA/extract (emptied over ssh before each run)
#   grep     /bin/grep -rn over DATA/src                     (throughput)
#   read     /bin/dd bs=1M of DATA/big to /dev/null          (throughput)
# Every measurement starts cold: a fresh sshfs mount or a fresh mproxy session
# (its start-up is not timed), after `echo 3 >/proc/sys/vm/drop_caches` when
# root. The remote side is a tmpfs, which drop_caches leaves alone. The two
# sides alternate which goes first, run by run.
#
# Targets (the issue): mproxy at least 2x as fast as sshfs on the metadata
# operations, at least as fast on the throughput ones, slower on none.
#
# Knobs (environment): RUNS=3 (medians reported), FILES=20000,
# GIT_FILES=5000, GREP_MB=50, BIG_MB=1024, EXTRACT_FILES=5000,
# OPS='find ls git grep read extract', OP_TIMEOUT=900 (seconds, per
# measurement), SSHFS_OPTS, MPROXY_OPTS. The sizes are scaled down, with a
# message, when the remote tmpfs cannot hold them. KEEP=1 keeps the work
# directory.
#
# Per-run `name value` lines go to WORK/results, the summary table to stdout.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$root/build-bench}" && pwd)"
RUNS="${RUNS:-3}"
FILES="${FILES:-20000}"
GIT_FILES="${GIT_FILES:-5000}"
GREP_MB="${GREP_MB:-50}"
BIG_MB="${BIG_MB:-1024}"
EXTRACT_FILES="${EXTRACT_FILES:-5000}"
OPS="${OPS:-find ls git grep read extract}"
OP_TIMEOUT="${OP_TIMEOUT:-900}"
SSHFS_OPTS="${SSHFS_OPTS:-}"
MPROXY_OPTS="${MPROXY_OPTS:-}"

log() { echo "run_workspace_bench: $*" >&2; }
die() { log "$*"; exit 1; }

mproxy="$build/broker/mproxy"
for f in "$mproxy" "$build/shim/mproxy-shim"; do
  [ -x "$f" ] || die "$f missing (build it first)"
done
[ -f "$build/agent-bundle/bundle.tar.gz" ] ||
  die "$build/agent-bundle/bundle.tar.gz missing (ninja -C $build agent-bundle)"
command -v sshfs >/dev/null || die "sshfs missing (apt-get install sshfs)"
fusermount=fusermount3
command -v "$fusermount" >/dev/null || fusermount=fusermount
ops="$root/bench/workspace_ops.sh"
for op in $OPS; do
  case "$op" in
    find | ls | git | grep | read | extract) ;;
    *) die "unknown operation '$op' in OPS" ;;
  esac
done
has_op() { [[ " $OPS " == *" $1 "* ]]; }

work="$(mktemp -d /tmp/mproxy-workspace-bench.XXXXXX)"
chmod 0755 "$work"  # the login user reads authorized_keys under it
sshd_dir="$work/sshd"
mnt="$work/mnt"
out="$work/out"  # the operations' output, a directory per side
mkdir -p "$mnt" "$out/sshfs" "$out/mproxy"
host="mproxy-test"
cfg=""
failures=0  # failed measurements: their output is kept for a look

cleanup() {
  local rc=$?
  set +e
  if mountpoint -q "$mnt" 2>/dev/null; then
    "$fusermount" -u "$mnt" 2>/dev/null || "$fusermount" -uz "$mnt" 2>/dev/null
  fi
  [ -d "$sshd_dir" ] && "$root/scripts/test-sshd.sh" stop "$sshd_dir" >/dev/null 2>&1
  if mountpoint -q "$mnt" 2>/dev/null; then
    # Never rm -rf through a live mount: that would delete the remote data.
    log "$mnt is still mounted; work directory kept: $work"
  elif [ "${KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ] || [ "$failures" -ne 0 ]; then
    log "work directory kept: $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

eval "$("$root/scripts/test-sshd.sh" start "$sshd_dir")"
cfg="$MPROXY_TEST_SSH_CONFIG"
remote_dir="${MPROXY_TEST_SSH_REMOTE_DIR:-}"
[ -n "$remote_dir" ] ||
  die "the test sshd has no remote-only directory (no mount namespace here): nothing to compare"
data="$remote_dir/wsbench"

# Runs one of the functions below on the remote side: ships their text and
# the call, quoted, to a remote bash.
remote_fn() {
  {
    declare -f gen_tree gen_repo gen_src gen_big setup_remote reset_extract count_files
    printf '%q' "$1"
    shift
    printf ' %q' "$@"
    echo
  } | ssh -F "$cfg" "$host" bash -s
}

# ---- Room on the remote tmpfs ----------------------------------------------

# KiB the data needs on a tmpfs, where every non-empty file takes a page; the
# repository counts three times (work tree, loose objects, then the pack).
need_kib() {
  local kib=32768
  if has_op find || has_op ls; then kib=$((kib + FILES * 4)); fi
  if has_op git; then kib=$((kib + GIT_FILES * 12)); fi
  if has_op grep; then kib=$((kib + GREP_MB * 1075)); fi
  if has_op read; then kib=$((kib + BIG_MB * 1024)); fi
  if has_op extract; then kib=$((kib + EXTRACT_FILES * 8)); fi
  echo "$kib"
}

fit_data() {
  local need avail mem_kib pid size
  need="$(need_kib)"
  mem_kib="$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)"
  pid="$(cat "$MPROXY_TEST_SSH_PIDFILE")"
  if [ "$(id -u)" -eq 0 ]; then
    # The sshd's tmpfs is 64 MiB; as root, grow it inside its namespace,
    # leaving this machine at least a quarter of its available memory.
    size=$((need + 65536))
    [ "$size" -le $((mem_kib * 3 / 4)) ] || size=$((mem_kib * 3 / 4))
    nsenter -t "$pid" -m mount -o "remount,size=${size}k" "$remote_dir" ||
      log "could not grow the remote tmpfs (nsenter/mount failed)"
  fi
  avail="$(ssh -F "$cfg" "$host" df -Pk "$remote_dir" | awk 'NR == 2 {print $4}')"
  [ "$need" -le "$avail" ] && return 0

  if has_op read; then
    local big=$(((avail - (need - BIG_MB * 1024)) / 1024))
    if [ "$big" -ge 16 ]; then
      log "the remote tmpfs has $((avail / 1024)) MiB free: BIG_MB scaled down from $BIG_MB to $big"
      BIG_MB="$big"
      return 0
    fi
  fi
  local pct=$(((avail - 32768) * 100 / (need - 32768)))
  [ "$pct" -ge 1 ] || die "the remote tmpfs has $((avail / 1024)) MiB free: too little for any data"
  scale() { local v=$(($1 * pct / 100)); [ "$v" -ge 1 ] && echo "$v" || echo 1; }
  log "the remote tmpfs has $((avail / 1024)) MiB free, $((need / 1024)) MiB needed:" \
    "all sizes scaled down to $pct%"
  FILES="$(scale "$FILES")" GIT_FILES="$(scale "$GIT_FILES")" GREP_MB="$(scale "$GREP_MB")"
  BIG_MB="$(scale "$BIG_MB")" EXTRACT_FILES="$(scale "$EXTRACT_FILES")"
}

# ---- The data, made on the remote side (these run there) -------------------

# N one-line files, 50 a directory, 20 directories under each top one.
gen_tree() {
  local dir="$1" n="$2" i p=""
  for ((i = 0; i < n; i++)); do
    if ((i % 50 == 0)); then
      p="$dir/d$((i / 1000))/e$((i / 50 % 20))"
      mkdir -p "$p" || return 1
    fi
    printf 'file %d of the tree\n' "$i" >"$p/f$i.txt" || return 1
  done
}

# A repository of N small C files, 50 a directory, committed and packed. The
# files are dated 2020 so that no index entry is racily clean (which would
# make every status re-read the file).
gen_repo() {
  local dir="$1" n="$2" i p=""
  for ((i = 0; i < n; i++)); do
    if ((i % 50 == 0)); then
      p="$dir/src/m$((i / 1000))/p$((i / 50 % 20))"
      mkdir -p "$p" || return 1
    fi
    printf '// part %d\n#include "common.h"\n\nint f%d(int x) {\n  return x * %d + %d;\n}\n' \
      "$((i / 50))" "$i" "$((i % 97))" "$i" >"$p/f$i.c" || return 1
  done
  printf 'the workspace benchmark repository\n' >"$dir/README"
  export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
  export GIT_AUTHOR_DATE='2020-01-01T00:00:00Z' GIT_COMMITTER_DATE='2020-01-01T00:00:00Z'
  find "$dir" -type f -exec touch -d @1577836800 {} + &&
    git -C "$dir" -c init.defaultBranch=main init -q &&
    git -C "$dir" add -A &&
    git -C "$dir" -c user.name=wsbench -c user.email=wsbench@localhost commit -q -m 'wsbench' &&
    git -C "$dir" gc -q &&
    [ -z "$(git -C "$dir" status --porcelain)" ]
}

# MB MiB of C-like text in 64 KiB files, 50 a directory, from a fixed-seed
# Park-Miller generator (exact in awk's doubles, so any awk gives the same
# bytes). About one line in 500 holds `FIXME(wsbench): ... overflows`.
gen_src() {
  local dir="$1" mb="$2"
  mkdir -p "$dir" && awk -v dir="$dir" -v files="$((mb * 16))" '
    function rnd(n) { seed = (seed * 16807) % 2147483647; return seed % n }
    BEGIN {
      nw = split("buffer socket inode channel frame window packet cursor table " \
        "index entry cache queue lock state handle stream record header block " \
        "page node tree list value count offset length error status result " \
        "option config reply request session", w, " ")
      seed = 20240601
      for (f = 0; f < files; f++) {
        d = dir "/s" int(f / 50)
        if (f % 50 == 0) system("mkdir -p " d)
        name = d "/unit" f ".c"
        size = 0
        while (size < 65536) {
          a = w[1 + rnd(nw)]; b = w[1 + rnd(nw)]; c = w[1 + rnd(nw)]
          k = rnd(8)
          if (k == 0) line = sprintf("static int %s_%s(struct %s *%s, size_t %s_len) {", a, b, c, a, b)
          else if (k == 1) line = sprintf("  if (%s->%s > %d) return -%d;", a, b, rnd(4096), 1 + rnd(125))
          else if (k == 2) line = sprintf("  %s->%s = %s_%s(%s, %d);", a, b, c, a, b, rnd(100000))
          else if (k == 3) line = sprintf("  /* The %s keeps its %s until the %s is closed. */", a, b, c)
          else if (k == 4) line = sprintf("  for (size_t i = 0; i < %s->%s_count; i++) %s[i] = 0;", a, b, c)
          else if (k == 5) line = sprintf("  return %s_%s_%s(%s);", a, b, c, a)
          else if (k == 6) line = "}"
          else line = ""
          if (rnd(500) == 0) line = line sprintf("  // FIXME(wsbench): %s_%s overflows", a, b)
          print line > name
          size += length(line) + 1
        }
        close(name)
      }
    }'
}

# One MB MiB file of a fixed AES-CTR key stream: deterministic and, unlike
# zeros or a repeated block, not compressible by any layer in between.
gen_big() {
  local file="$1" mb="$2"
  if command -v openssl >/dev/null; then
    openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f \
      -iv 00000000000000000000000000000000 -in /dev/zero 2>/dev/null |
      head -c "$((mb * 1048576))" >"$file"
  else
    echo "no openssl on the remote side: random content" >&2
    head -c "$((mb * 1048576))" /dev/urandom >"$file"
  fi
  [ "$(stat -c %s "$file")" = "$((mb * 1048576))" ]
}

# Makes DATA; prints `name expected` for the checks, found with the remote
# side's own tools.
setup_remote() {
  local data="$1" token="$2" files="$3" git_files="$4" grep_mb="$5" big_mb="$6"
  local pattern="$7" ops=" $8 "
  export LC_ALL=C
  rm -rf "$data" && mkdir -p "$data/extract" || return 1
  if [[ "$ops" == *" find "* || "$ops" == *" ls "* ]]; then
    gen_tree "$data/tree" "$files" || { echo "gen_tree failed" >&2; return 1; }
    echo "find $(find "$data/tree" | wc -l)"
    # shellcheck disable=SC2012  # the count ls -lR gives is the point
    echo "ls $(ls -lR "$data/tree" | wc -l)"
  fi
  if [[ "$ops" == *" git "* ]]; then
    gen_repo "$data/repo" "$git_files" || { echo "gen_repo failed" >&2; return 1; }
  fi
  if [[ "$ops" == *" grep "* ]]; then
    gen_src "$data/src" "$grep_mb" || { echo "gen_src failed" >&2; return 1; }
    echo "grep $(grep -rn -e "$pattern" "$data/src" | wc -l)"
  fi
  if [[ "$ops" == *" read "* ]]; then
    gen_big "$data/big" "$big_mb" || { echo "gen_big failed" >&2; return 1; }
    echo "read $((big_mb * 1048576))"
  fi
  echo "$token" >"$data/.wsbench-marker"
  echo "used_kib $(du -sk "$data" | cut -f1)"
}

reset_extract() { rm -rf "$1/extract" && mkdir "$1/extract"; }
count_files() { find "$1" -type f | wc -l; }

# ---- Setup -------------------------------------------------------------------

fit_data
token="wsbench-$$-$RANDOM$RANDOM"
grep_pattern='FIXME(wsbench): [a-z]*_[a-z]* overflows'
log "making the remote data in $data: FILES=$FILES GIT_FILES=$GIT_FILES GREP_MB=$GREP_MB" \
  "BIG_MB=$BIG_MB (ops: $OPS)"
t0="$(date +%s)"
remote_fn setup_remote "$data" "$token" "$FILES" "$GIT_FILES" "$GREP_MB" "$BIG_MB" \
  "$grep_pattern" "$OPS" >"$work/expected" ||
  die "making the remote data failed"
log "remote data made in $(($(date +%s) - t0)) s, $(awk '$1 == "used_kib" {print int($2 / 1024)}' \
  "$work/expected") MiB"
declare -A expect
while read -r name value; do expect[$name]="$value"; done <"$work/expected"

tarball="$work/extract.tar"
if has_op extract; then
  # EXTRACT_FILES files of 1-3 KiB, 50 a directory, tarred here.
  src="$work/extract-src"
  for ((i = 0; i < EXTRACT_FILES; i++)); do
    if ((i % 50 == 0)); then p="$src/x$((i / 1000))/y$((i / 50 % 20))"; mkdir -p "$p"; fi
    printf -v pad '%*s' $((1024 + (i * 37) % 2048)) ''
    printf 'extracted file %d\n%s\n' "$i" "${pad// /x}" >"$p/g$i.txt"
  done
  tar -C "$src" -cf "$tarball" .
  rm -rf "$src"
fi

drop=0
if [ "$(id -u)" -eq 0 ] && sync && echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then drop=1; fi
drop_caches() {
  if [ "$drop" = 1 ]; then sync; echo 3 >/proc/sys/vm/drop_caches; fi
}

op_arg() {
  case "$1" in
    grep) echo "$grep_pattern" ;;
    extract) echo "$tarball" ;;
    *) echo "" ;;
  esac
}

# ---- Measuring -----------------------------------------------------------------

results="$work/results"
: >"$results"
record() { echo "$run $1 $2" >>"$results"; }
declare -A note        # "side op" -> the first failure, shown under the table
mproxy_unavailable=""  # why the workspace could not be measured at all
mproxy_answered=0      # 1 once a session has measured something
outcome="" reason=""   # set by take_result

note_failure() {
  local key="$1 $2"
  log "run $run: $1 $2: $3"
  failures=$((failures + 1))
  [ -n "${note[$key]:-}" ] || note[$key]="$3"
}

# Reads workspace_ops.sh's answer for SIDE OP from $work/op.out; RC is the exit
# status of what ran it. Sets outcome (ok, unavailable, failed or broken: the
# script did not answer) and reason; records the figure when ok.
take_result() {
  local side="$1" op="$2" rc="$3" line
  line="$(tail -n 1 "$work/op.out")"
  reason=""
  case "$line" in
    "$op "[0-9]*)
      record "${side}_${op}_s" "${line#"$op "}"
      outcome=ok
      ;;
    "unavailable "*) outcome=unavailable reason="${line#unavailable }" ;;
    "failed "*) outcome=failed reason="${line#failed }" ;;
    *)
      outcome=broken
      if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        reason="timed out after ${OP_TIMEOUT} s"
      else
        reason="exited $rc: $(grep -v '^$' "$work/op.err" | head -n 1)"
      fi
      ;;
  esac
}

after_extract() {
  local side="$1" n
  n="$(remote_fn count_files "$data/extract")"
  if [ "$n" != "$EXTRACT_FILES" ]; then
    note_failure "$side" extract "$n files arrived on the remote side, not $EXTRACT_FILES"
    # The figure does not count: take it back out.
    sed -i "/^$run ${side}_extract_s /d" "$results"
  fi
}

measure_sshfs() {
  local op="$1" rc=0
  if [ "$op" = extract ]; then remote_fn reset_extract "$data"; fi
  drop_caches
  # shellcheck disable=SC2086  # SSHFS_OPTS is a list of options
  sshfs -F "$cfg" $SSHFS_OPTS "$host:$data" "$mnt" 2>"$work/sshfs.err" ||
    die "sshfs mount failed: $(cat "$work/sshfs.err")"
  timeout -k 10 "$OP_TIMEOUT" /bin/bash "$ops" "$op" "$mnt" "$out/sshfs" "$token" \
    "${expect[$op]:-}" "$(op_arg "$op")" </dev/null >"$work/op.out" 2>"$work/op.err" || rc=$?
  "$fusermount" -u "$mnt" 2>/dev/null || { sleep 1; "$fusermount" -u "$mnt"; }
  take_result sshfs "$op" "$rc"
  if [ "$outcome" != ok ]; then
    note_failure sshfs "$op" "$reason"
  elif [ "$op" = extract ]; then
    after_extract sshfs
  fi
}

measure_mproxy() {
  local op="$1" rc=0
  [ -z "$mproxy_unavailable" ] || return 0
  if [ "$op" = extract ]; then remote_fn reset_extract "$data"; fi
  drop_caches
  # shellcheck disable=SC2086  # MPROXY_OPTS is a list of options
  (cd "$remote_dir" && exec timeout -k 10 "$OP_TIMEOUT" "$mproxy" -F "$cfg" $MPROXY_OPTS "$host" \
    -- /bin/bash "$ops" "$op" "$data" "$out/mproxy" "$token" "${expect[$op]:-}" "$(op_arg "$op")") \
    </dev/null >"$work/op.out" 2>"$work/op.err" || rc=$?
  if [ -s "$work/op.err" ]; then
    log "mproxy said (stderr of the session):"
    sed 's/^/  | /' "$work/op.err" >&2
  fi
  take_result mproxy "$op" "$rc"
  if [ "$outcome" = ok ]; then
    mproxy_answered=1
    if [ "$op" = extract ]; then after_extract mproxy; fi
  elif [ "$outcome" = failed ] || [ "$mproxy_answered" = 1 ]; then
    note_failure mproxy "$op" "$reason"
  else
    # The first session did not get to run the operation, or DATA did not
    # show the remote side: the workspace is not there, for any operation.
    mproxy_unavailable="$reason"
    log "run $run: mproxy: workspace not available ($reason); only sshfs is measured"
  fi
}

for run in $(seq "$RUNS"); do
  if ((run % 2)); then sides="sshfs mproxy"; else sides="mproxy sshfs"; fi
  for op in $OPS; do
    log "run $run of $RUNS: $op ($sides)"
    for side in $sides; do "measure_$side" "$op"; done
  done
done

# ---- Report --------------------------------------------------------------------

# shellcheck source=bench/stats.sh
. "$root/bench/stats.sh"
write_medians

what() {
  case "$1" in
    find) echo "find, $FILES files" ;;
    ls) echo "ls -lR, $FILES files" ;;
    git) echo "git status, $GIT_FILES files" ;;
    grep) echo "grep -rn, $GREP_MB MiB" ;;
    read) echo "dd bs=1M, $BIG_MB MiB file" ;;
    extract) echo "tar -x, $EXTRACT_FILES files" ;;
  esac
}
target() { case "$1" in grep | read) echo 1 ;; *) echo 2 ;; esac; }
secs() { if [ -n "$1" ]; then printf '%.3f' "$1"; else echo "$2"; fi; }

echo
echo "workspace benchmark: mproxy's workspace against sshfs, $RUNS runs; times are medians over"
echo "the runs in seconds, ratios (sshfs/mproxy, above 1: mproxy faster) medians of the per-run"
echo "ratios (both sides measured back to back in one run)"
echo "sshfs $(sshfs --version 2>&1 | awk '/^SSHFS version/ {print $3}'): its defaults${SSHFS_OPTS:+ plus $SSHFS_OPTS}" \
  "(one connection, directory and attribute caches on, no reconnect, no compression)"
echo "mproxy: $mproxy${MPROXY_OPTS:+ $MPROXY_OPTS}; both with OpenSSH's / libssh's default cipher"
if [ "$drop" = 1 ]; then
  echo "cold: a fresh mount or session per measurement, page cache dropped before each"
else
  echo "cold: a fresh mount or session per measurement; page cache NOT dropped (not root)"
fi
echo "$(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
row() { printf '%-8s %-28s %9s %9s %8s %7s  %s\n' "$@"; }
row "op" "what" "sshfs s" "mproxy s" "ratio" "target" "result"
slower=0 compared=0
for op in $OPS; do
  s="$(m "sshfs_${op}_s")"
  p="$(m "mproxy_${op}_s")"
  t="$(target "$op")"
  if [ -n "$mproxy_unavailable" ] && [ -z "$p" ]; then
    pcell="n/a"
  else
    pcell="$(secs "$p" failed)"
  fi
  if [ -n "$s" ] && [ -n "$p" ]; then
    ratio="$(rmed "sshfs_${op}_s" "mproxy_${op}_s")"
    result="$(check "$ratio" '>=' "$t")"
    compared=$((compared + 1))
    [ "$(awk -v r="$ratio" 'BEGIN {print (r < 1) ? 1 : 0}')" = 0 ] || slower=$((slower + 1))
    ratio="${ratio}x"
  else
    ratio="-"
    result="n/a"
  fi
  row "$op" "$(what "$op")" "$(secs "$s" failed)" "$pcell" "$ratio" ">=${t}x" "$result"
done
if [ "$compared" -gt 0 ]; then
  echo "slower than sshfs on none: $(check "$slower" '==' 0) ($slower of $compared slower)"
fi
if [ -n "$mproxy_unavailable" ]; then
  echo "mproxy: workspace not available ($mproxy_unavailable)"
fi
for key in "${!note[@]}"; do
  echo "failed: $key: ${note[$key]}"
done
echo
echo "per-run figures (s):"
awk '{a[$2] = a[$2] " " $3} END {for (k in a) print k ":" a[k]}' "$results" | sort
