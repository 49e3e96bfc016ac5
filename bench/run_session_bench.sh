#!/usr/bin/env bash
# The cost of one command inside an mproxy session, side by side with the same
# command run locally and with OpenSSH, on one throwaway loopback sshd.
#
#   bench/run_session_bench.sh [BUILD_DIR]        (default: build-bench)
#
# Needs a build with mproxy, mproxy-shim, the agent bundle and session_bench:
#   cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
#   ninja -C build-bench mproxy mproxy-shim agent-bundle session_bench
#
# What is timed, each by session_bench (posix_spawnp + waitpid, stdio on
# /dev/null), N times in a row per run:
#   session  `true` inside `mproxy HOST -- ...`: a PATH lookup lands in the stub
#            directory, so each run is stub -> shim -> broker -> agent -> exit
#   local    `/usr/bin/true` inside the same session (an absolute path stays
#            local): the same spawn without mproxy. Runs alternate with the
#            session ones, and the overhead is the median of the per-pair
#            differences, so a busy machine slows both alike
#   cm       `ssh -o ControlPath=... HOST true` over a warm ControlMaster
#   fresh    `ssh HOST true`, a new connection each time
# plus PAR_N commands PAR at a time through the session (failures counted)
# and, for information, the start-up of a whole session (`mproxy HOST --
# /usr/bin/true`).
#
# Knobs (environment): RUNS=3 (the whole set is repeated; medians reported),
# N=1000, CM_N=N, FRESH_N=50, PAR_N=1000, PAR=16, SESSION_N=20 (session
# start-ups), CMD=true (the command timed). KEEP=1 keeps the work directory.
#
# Per-run `name value` lines go to WORK/results, the summary table to stdout.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$root/build-bench}" && pwd)"
RUNS="${RUNS:-3}"
N="${N:-1000}"
CM_N="${CM_N:-$N}"
FRESH_N="${FRESH_N:-50}"
PAR_N="${PAR_N:-1000}"
PAR="${PAR:-16}"
SESSION_N="${SESSION_N:-20}"
CMD="${CMD:-true}"

bench="$build/bench/session_bench"
mproxy="$build/broker/mproxy"
for f in "$bench" "$mproxy" "$build/shim/mproxy-shim"; do
  [ -x "$f" ] || { echo "run_session_bench: $f missing (build it first)" >&2; exit 1; }
done
local_cmd="$(type -P "$CMD")"

work="$(mktemp -d /tmp/mproxy-session-bench.XXXXXX)"
chmod 0755 "$work"  # the login user reads authorized_keys under it
sshd_dir="$work/sshd"
cfg=""
host="mproxy-test"
cm_opts=(-o ControlMaster=auto -o "ControlPath=$work/cm-%C" -o ControlPersist=60)

cleanup() {
  local rc=$?
  set +e
  [ -n "$cfg" ] && ssh -F "$cfg" "${cm_opts[@]}" -O exit "$host" >/dev/null 2>&1
  [ -d "$sshd_dir" ] && "$root/scripts/test-sshd.sh" stop "$sshd_dir" >/dev/null 2>&1
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
    echo "run_session_bench: work directory kept: $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "run_session_bench: $*" >&2; }

eval "$("$root/scripts/test-sshd.sh" start "$sshd_dir")"
cfg="$MPROXY_TEST_SSH_CONFIG"

results="$work/results"
: >"$results"
record() { echo "$run $1 $2" >>"$results"; }
# Records session_bench's `name value` lines from FILE as PREFIX_name.
record_file() {
  local prefix="${1:+$1_}" file="$2" name value
  while read -r name value; do record "$prefix$name" "$value"; done <"$file"
}
# mproxy must print nothing of its own on success; anything it does print
# (a bwrap or FUSE warning, say) is shown, since it changes what is measured.
check_quiet() {
  if [ -s "$1" ]; then log "mproxy said (stderr of the session):"; sed 's/^/  | /' "$1" >&2; fi
}

for run in $(seq "$RUNS"); do
  # One session: the stub path and the local baseline back to back, then
  # the parallel runs. The program is bash (local), which starts the local
  # session_bench by its absolute path.
  log "run $run of $RUNS: in one session: $N x $CMD through the stub, $N x $local_cmd, $PAR_N at $PAR"
  "$mproxy" -F "$cfg" "$host" -- bash -c '
    "$1" alt "$2" "$3" -- "$4" >"$5/alt.out" &&
    "$1" par "$6" "$7" "$3" >"$5/par.out"' \
    bash "$bench" "$N" "$CMD" "$local_cmd" "$work" "$PAR_N" "$PAR" \
    </dev/null 2>"$work/session.err" || { check_quiet "$work/session.err"; exit 1; }
  check_quiet "$work/session.err"
  # a: through the stub, b: local, alternating run by run.
  sed -e 's/^a_/session_/' -e 's/^b_/local_/' -e 's/^diff_/overhead_/' "$work/alt.out" \
    >"$work/alt.named"
  record_file "" "$work/alt.named"
  record_file par "$work/par.out"

  log "run $run: ssh with ControlMaster, $CM_N x $CMD"
  ssh -F "$cfg" "${cm_opts[@]}" "$host" true  # the master, warm
  "$bench" seq "$CM_N" ssh -F "$cfg" "${cm_opts[@]}" "$host" "$CMD" >"$work/cm.out"
  record_file cm "$work/cm.out"

  log "run $run: fresh ssh, $FRESH_N x $CMD"
  "$bench" --warmup 2 seq "$FRESH_N" ssh -F "$cfg" -o ControlMaster=no -o ControlPath=none \
    "$host" "$CMD" >"$work/fresh.out"
  record_file fresh "$work/fresh.out"

  log "run $run: $SESSION_N whole sessions (mproxy $host -- $local_cmd)"
  "$bench" --warmup 1 seq "$SESSION_N" "$mproxy" -F "$cfg" "$host" -- "$local_cmd" \
    >"$work/startup.out"
  record_file startup "$work/startup.out"
done

# shellcheck source=bench/stats.sh
. "$root/bench/stats.sh"
write_medians
# The worst run decides "no failures".
fmax() { awk -v k="$1" '$2 == k && $3 > max {max = $3} END {print max + 0}' "$results"; }

overhead="$(m overhead_median_ms)"
cm_x="$(rmed cm_median_ms session_median_ms)"
fails="$(( $(fmax session_failures) + $(fmax par_failures) ))"

echo
echo "mproxy session benchmark: $RUNS runs; figures are medians over the runs, ratios are"
echo "medians of the per-run ratios (each pair measured back to back in one run)"
echo "command: $CMD (local: $local_cmd); N=$N (ControlMaster $CM_N, fresh $FRESH_N);" \
  "parallel $PAR_N at $PAR; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
row() { printf '%-50s %10s %10s %9s  %s\n' "$@"; }
row "measurement" "session" "baseline" "ratio" "target"
row "per command median ms, vs local" "$(m session_median_ms)" "$(m local_median_ms)" \
  "$(rmed session_median_ms local_median_ms)x" ""
row "  overhead over local: median of per-pair diffs, ms" "$overhead" "" "" \
  "<=1 ms: $(check "$overhead" '<=' 1)"
row "  overhead over local: p90 of per-pair diffs, ms" "$(m overhead_p90_ms)" "" "" ""
row "per command p90 ms, vs local" "$(m session_p90_ms)" "$(m local_p90_ms)" \
  "$(rmed session_p90_ms local_p90_ms)x" ""
row "per command median ms, vs ssh ControlMaster" "$(m session_median_ms)" "$(m cm_median_ms)" \
  "${cm_x}x" ">=5x faster: $(check "$cm_x" '>=' 5)"
row "per command p90 ms, vs ssh ControlMaster" "$(m session_p90_ms)" "$(m cm_p90_ms)" \
  "$(rmed cm_p90_ms session_p90_ms)x" ""
row "per command median ms, vs fresh ssh" "$(m session_median_ms)" "$(m fresh_median_ms)" \
  "$(rmed fresh_median_ms session_median_ms)x" ""
row "per command p90 ms, vs fresh ssh" "$(m session_p90_ms)" "$(m fresh_p90_ms)" \
  "$(rmed fresh_p90_ms session_p90_ms)x" ""
row "sequential failures (session / cm / fresh)" "$(fmax session_failures)" \
  "$(fmax cm_failures)/$(fmax fresh_failures)" "" ""
row "$PAR_N at $PAR through the session: failures" "$(fmax par_failures)" "" "" \
  "none: $(check "$fails" '==' 0)"
row "$PAR_N at $PAR: wall ms, commands/s" "$(m par_wall_ms)" "$(m par_per_s)" "" ""
row "$PAR_N at $PAR: per command median / p90 ms" "$(m par_median_ms)" "$(m par_p90_ms)" "" ""
row "whole session start-up, median / p90 ms" "$(m startup_median_ms)" "$(m startup_p90_ms)" "" \
  "(info: connect, agent, FUSE, bwrap)"
echo
echo "per-run figures:"
awk '{a[$2] = a[$2] " " $3} END {for (k in a) print k ":" a[k]}' "$results" | sort
