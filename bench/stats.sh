# Shared by the run_*_bench.sh scripts (sourced): the medians over runs and
# the met/MISSED checks. Expects $results (lines "run name value") and $work.

# Median over the runs of every recorded figure, into $work/medians.
medians="$work/medians"
write_medians() {
  awk '{print $2, $3}' "$results" | sort -k1,1 -k2,2g | awk '
    function flush() { if (n) printf "%s %s\n", key, (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2) }
    $1 != key { flush(); key = $1; n = 0 }
    { v[++n] = $2 }
    END { flush() }' >"$medians"
}
m() { awk -v k="$1" '$1 == k {print $2}' "$medians"; }
# Median over the runs of A/B, each run's pair measured back to back.
rmed() {
  awk -v x="$1" -v y="$2" '$2 == x {a[$1] = $3} $2 == y {b[$1] = $3}
    END {for (r in a) if (b[r] + 0 != 0) print a[r] / b[r]}' "$results" | sort -g |
    awk '{v[NR] = $1} END {if (!NR) print "-"; else printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
yes_no() { if [ "$1" = 1 ]; then echo met; else echo MISSED; fi; }
# Targets: a comparison in awk, printed as met / MISSED.
check() { yes_no "$(awk -v a="$1" -v b="$3" "BEGIN {print ((a + 0) $2 (b + 0)) ? 1 : 0}")"; }
