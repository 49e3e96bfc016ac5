#!/usr/bin/env bash
# mproxy exec against OpenSSH, side by side, on one throwaway loopback sshd.
#
#   bench/run_exec_bench.sh [BUILD_DIR]        (default: build-bench)
#
# Needs a build with exec_bench and the agent bundle, e.g.
#   cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
#   ninja -C build-bench exec_bench mproxy agent-bundle   (or just ninja)
#
# Knobs (environment): RUNS=3 (the whole set is repeated; medians reported),
# N=1000 sequential commands, CM_N=N with ControlMaster, FRESH_N=50 fresh
# connections, PARALLEL=100, PARALLEL_CMD='sleep 0.5', FILE_MB=1024 (the remote
# file for the throughput runs), CIPHER=chacha20-poly1305@openssh.com (pinned
# for both clients through the ssh_config; it is also what both pick by
# default). KEEP=1 keeps the work directory.
#
# Every figure of one run is measured back to back with its baseline; per-run
# `name value` lines go to WORK/results, the summary table to stdout.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$root/build-bench}" && pwd)"
RUNS="${RUNS:-3}"
N="${N:-1000}"
CM_N="${CM_N:-$N}"
FRESH_N="${FRESH_N:-50}"
PARALLEL="${PARALLEL:-100}"
PARALLEL_CMD="${PARALLEL_CMD:-sleep 0.5}"
FILE_MB="${FILE_MB:-1024}"
CIPHER="${CIPHER:-chacha20-poly1305@openssh.com}"

exec_bench="$build/bench/exec_bench"
mproxy="$build/broker/mproxy"
[ -x "$exec_bench" ] || { echo "run_exec_bench: $exec_bench missing (build it first)" >&2; exit 1; }
[ -x "$mproxy" ] || { echo "run_exec_bench: $mproxy missing (build it first)" >&2; exit 1; }

work="$(mktemp -d /tmp/mproxy-exec-bench.XXXXXX)"
chmod 0755 "$work"  # the login user reads authorized_keys under it
sshd_dir="$work/sshd"
cfg="$work/ssh_config"
host="mproxy-test"
remote_file=""
cm_opts=(-o ControlMaster=auto -o "ControlPath=$work/cm-%C" -o ControlPersist=60)

cleanup() {
  local rc=$?
  set +e
  if [ -f "$cfg" ]; then
    [ -n "$remote_file" ] && ssh -F "$cfg" "$host" rm -f "$remote_file" >/dev/null 2>&1
    ssh -F "$cfg" "${cm_opts[@]}" -O exit "$host" >/dev/null 2>&1
  fi
  [ -d "$sshd_dir" ] && "$root/scripts/test-sshd.sh" stop "$sshd_dir" >/dev/null 2>&1
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
    echo "run_exec_bench: work directory kept: $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "run_exec_bench: $*" >&2; }

eval "$("$root/scripts/test-sshd.sh" start "$sshd_dir")"
# The generated config plus the pinned cipher, used by ssh and by libssh.
{ cat "$MPROXY_TEST_SSH_CONFIG"; echo "  Ciphers $CIPHER"; } >"$cfg"

# Which cipher each client really negotiates.
ssh -v -F "$cfg" "$host" true >"$work/ssh-v.log" 2>&1
ssh_cipher="$(sed -n 's/.*kex: server->client cipher: \([^ ]*\).*/\1/p' "$work/ssh-v.log" | head -n1)"
# libssh 0.10 logs only to a thread-local callback of the connection thread,
# so show instead that it obeys the config's Ciphers line: with a cipher this
# sshd does not offer, the connection must fail.
{ cat "$MPROXY_TEST_SSH_CONFIG"; echo "  Ciphers 3des-cbc"; } >"$work/ssh_config.3des"
if "$mproxy" exec -F "$work/ssh_config.3des" "$host" -- true >/dev/null 2>"$work/3des.err"; then
  libssh_cipher="? (libssh ignored Ciphers)"
else
  libssh_cipher="$CIPHER (pinned; with Ciphers 3des-cbc it fails: $(head -c 120 "$work/3des.err"))"
fi
log "cipher: OpenSSH ${ssh_cipher:-?}; libssh $libssh_cipher"

# The remote file for the throughput runs, read once so it is in page cache.
remote_file="mproxy-exec-bench-$$.bin"
log "creating a ${FILE_MB} MiB remote file"
ssh -F "$cfg" "$host" "head -c ${FILE_MB}M /dev/urandom >$remote_file && cat $remote_file >/dev/null"
remote_path="$(ssh -F "$cfg" "$host" 'echo "$HOME"')/$remote_file"
file_bytes=$((FILE_MB * 1024 * 1024))

results="$work/results"
: >"$results"
record() { echo "$run $1 $2" >>"$results"; }

# Times `count` runs of a command (stdin /dev/null, output discarded) and
# records median/p90/p99 in ms as PREFIX_*; failures too.
time_seq() {
  local prefix="$1" count="$2"; shift 2
  local i t0 t1 failures=0 times="$work/times"
  : >"$times"
  for ((i = 0; i < count; i++)); do
    t0=$EPOCHREALTIME
    "$@" </dev/null >/dev/null 2>>"$work/stderr" || failures=$((failures + 1))
    t1=$EPOCHREALTIME
    echo "$t0 $t1" >>"$times"
  done
  awk '{print ($2 - $1) * 1000}' "$times" | sort -g >"$times.sorted"
  record "${prefix}_median_ms" "$(pct "$times.sorted" 0.5)"
  record "${prefix}_p90_ms" "$(pct "$times.sorted" 0.9)"
  record "${prefix}_p99_ms" "$(pct "$times.sorted" 0.99)"
  record "${prefix}_failures" "$failures"
}
pct() { awk -v p="$2" '{v[NR] = $1} END {i = int(p * (NR - 1) + 0.5) + 1; printf "%.3f", v[i]}' "$1"; }

# `count` commands at once with ControlMaster; records failures and wall ms.
parallel_ssh() {
  local prefix="$1" count="$2"; shift 2
  local i t0 t1 failures=0 pids=()
  t0=$EPOCHREALTIME
  for ((i = 0; i < count; i++)); do
    ssh -F "$cfg" "${cm_opts[@]}" "$host" "$@" </dev/null >/dev/null 2>"$work/par.$i" &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || failures=$((failures + 1))
  done
  t1=$EPOCHREALTIME
  record "${prefix}_failures" "$failures"
  # sshd's MaxSessions (10) refuses the rest on the master's connection; ssh
  # then falls back to a connection of its own ("disabling multiplexing").
  record "${prefix}_refused_by_master" "$(cat "$work"/par.* | grep -c 'Session open refused' || true)"
  record "${prefix}_wall_ms" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) * 1000}')"
  if [ "$failures" -gt 0 ]; then
    log "$prefix: $failures of $count failed; e.g. $(cat "$work"/par.* | grep -v '^$' | sort | uniq -c | sort -rn | head -n1)"
  fi
  rm -f "$work"/par.*
}

for run in $(seq "$RUNS"); do
  # The three throughput figures back to back (mproxy, bare libssh, ssh).
  log "run $run of $RUNS: exec_bench: $N x true, cat through mproxy and bare libssh"
  "$exec_bench" -F "$cfg" "$host" --n "$N" --parallel 0 --file "$remote_path" >"$work/exec_bench.out"
  while read -r name value; do record "mproxy_$name" "$value"; done <"$work/exec_bench.out"

  log "run $run: ssh cat of the ${FILE_MB} MiB file"
  t0=$EPOCHREALTIME
  TIMEFORMAT='%U %S'  # the ssh client's own CPU time
  { time ssh -F "$cfg" -o ControlMaster=no -o ControlPath=none "$host" cat "$remote_file" \
      >/dev/null 2>>"$work/stderr"; } 2>"$work/cat.cpu"
  t1=$EPOCHREALTIME
  record ssh_cat_cpu_s_per_gb "$(awk -v n="$file_bytes" '{printf "%.3f", ($1 + $2) / (n / 1e9)}' "$work/cat.cpu")"

  log "run $run: ssh with ControlMaster, $CM_N x true"
  ssh -F "$cfg" "${cm_opts[@]}" "$host" true  # the master, warm
  time_seq ssh_cm "$CM_N" ssh -F "$cfg" "${cm_opts[@]}" "$host" true

  log "run $run: fresh ssh, $FRESH_N x true"
  time_seq ssh_fresh "$FRESH_N" ssh -F "$cfg" -o ControlMaster=no -o ControlPath=none "$host" true
  log "run $run: fresh mproxy exec, $FRESH_N x true"
  time_seq mproxy_fresh "$FRESH_N" "$mproxy" exec -F "$cfg" "$host" -- true

  # The ssh cat minus this run's median connect + `true`, so that like
  # exec_bench's figure it counts the transfer, not the connection set-up.
  setup_ms="$(awk -v r="$run" '$1 == r && $2 == "ssh_fresh_median_ms" {print $3}' "$results")"
  record ssh_cat_mbps "$(awk -v a="$t0" -v b="$t1" -v s="$setup_ms" -v n="$file_bytes" \
    'BEGIN {printf "%.1f", n / ((b - a) - s / 1000) / 1e6}')"
  record ssh_cat_with_connect_mbps "$(awk -v a="$t0" -v b="$t1" -v n="$file_bytes" \
    'BEGIN {printf "%.1f", n / (b - a) / 1e6}')"

  log "run $run: exec_bench: $PARALLEL at once, then ssh with ControlMaster"
  "$exec_bench" -F "$cfg" "$host" --n 1 --parallel "$PARALLEL" --parallel-cmd "$PARALLEL_CMD" \
    >"$work/exec_bench.out" || true  # failures are figures too
  while read -r name value; do
    case "$name" in parallel*) record "mproxy_$name" "$value" ;; esac
  done <"$work/exec_bench.out"
  parallel_ssh ssh_parallel_true "$PARALLEL" true
  # shellcheck disable=SC2086
  parallel_ssh ssh_parallel_cmd "$PARALLEL" $PARALLEL_CMD
done

# shellcheck source=bench/stats.sh
. "$root/bench/stats.sh"
write_medians
rtt="$(m mproxy_rtt_median_ms)"
rtt_x="$(rmed ssh_cm_median_ms mproxy_rtt_median_ms)"
cat_x="$(rmed mproxy_cat_mbps ssh_cat_mbps)"
pf="$(m mproxy_parallel_true_failures)"
pcf="$(m mproxy_parallel_cmd_failures)"

echo
echo "mproxy exec benchmark: $RUNS runs; figures are medians over the runs, ratios are"
echo "medians of the per-run ratios (each pair measured back to back in one run)"
echo "cipher: OpenSSH ${ssh_cipher:-?}; libssh $libssh_cipher"
echo "N=$N (ControlMaster $CM_N, fresh $FRESH_N), parallel $PARALLEL, file ${FILE_MB} MiB"
echo
row() { printf '%-46s %10s %10s %8s  %s\n' "$@"; }
row "measurement" "mproxy" "baseline" "ratio" "target"
row "round trip median ms, vs ssh ControlMaster" "$rtt" "$(m ssh_cm_median_ms)" "${rtt_x}x" \
  "<=1.5 ms: $(check "$rtt" '<=' 1.5); >=5x faster: $(check "$rtt_x" '>=' 5)"
row "round trip p90 ms, vs ssh ControlMaster" "$(m mproxy_rtt_p90_ms)" "$(m ssh_cm_p90_ms)" \
  "$(rmed ssh_cm_p90_ms mproxy_rtt_p90_ms)x" ""
row "round trip p99 ms, vs ssh ControlMaster" "$(m mproxy_rtt_p99_ms)" "$(m ssh_cm_p99_ms)" \
  "$(rmed ssh_cm_p99_ms mproxy_rtt_p99_ms)x" ""
row "round trip median ms, vs fresh ssh" "$rtt" "$(m ssh_fresh_median_ms)" \
  "$(rmed ssh_fresh_median_ms mproxy_rtt_median_ms)x" ""
row "fresh 'mproxy exec' vs fresh ssh, median ms" "$(m mproxy_fresh_median_ms)" "$(m ssh_fresh_median_ms)" \
  "$(rmed ssh_fresh_median_ms mproxy_fresh_median_ms)x" "(info: connect + agent start each time)"
row "cat MB/s, vs ssh cat" "$(m mproxy_cat_mbps)" "$(m ssh_cat_mbps)" "$cat_x" \
  ">=0.8x: $(check "$cat_x" '>=' 0.8)"
row "bare libssh channel cat MB/s, vs ssh cat" "$(m mproxy_raw_cat_mbps)" "$(m ssh_cat_mbps)" \
  "$(rmed mproxy_raw_cat_mbps ssh_cat_mbps)" "(info; issue: 0.83-0.91)"
row "mproxy cat vs bare libssh channel, MB/s" "$(m mproxy_cat_mbps)" "$(m mproxy_raw_cat_mbps)" \
  "$(rmed mproxy_cat_mbps mproxy_raw_cat_mbps)" "(info: agent hop + framing)"
row "client CPU s/GB during cat: mproxy vs ssh" "$(m mproxy_cat_cpu_s_per_gb)" "$(m ssh_cat_cpu_s_per_gb)" \
  "$(rmed mproxy_cat_cpu_s_per_gb ssh_cat_cpu_s_per_gb)" "(info; lower is better)"
row "client CPU s/GB: bare libssh vs ssh" "$(m mproxy_raw_cat_cpu_s_per_gb)" "$(m ssh_cat_cpu_s_per_gb)" \
  "$(rmed mproxy_raw_cat_cpu_s_per_gb ssh_cat_cpu_s_per_gb)" "(info)"
row "$PARALLEL x true at once: failures" "$pf" "$(m ssh_parallel_true_failures)" "" \
  "none: $(check "$pf" '==' 0)"
row "$PARALLEL x true: ssh refused by master (fell back)" "-" "$(m ssh_parallel_true_refused_by_master)" "" ""
row "$PARALLEL x true at once: wall ms" "$(m mproxy_parallel_true_wall_ms)" \
  "$(m ssh_parallel_true_wall_ms)" "$(rmed ssh_parallel_true_wall_ms mproxy_parallel_true_wall_ms)x" ""
row "$PARALLEL x '$PARALLEL_CMD' at once: failures" "$pcf" "$(m ssh_parallel_cmd_failures)" "" \
  "none: $(check "$pcf" '==' 0)"
row "$PARALLEL x '$PARALLEL_CMD': ssh refused by master" "-" "$(m ssh_parallel_cmd_refused_by_master)" "" ""
row "$PARALLEL x '$PARALLEL_CMD' at once: wall ms" "$(m mproxy_parallel_cmd_wall_ms)" \
  "$(m ssh_parallel_cmd_wall_ms)" "$(rmed ssh_parallel_cmd_wall_ms mproxy_parallel_cmd_wall_ms)x" ""
echo
echo "per-run figures:"
awk '{a[$2] = a[$2] " " $3} END {for (k in a) print k ":" a[k]}' "$results" | sort
