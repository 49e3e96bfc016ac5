#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for SECONDS (default
# 60) over a scratch copy of its committed seed corpus.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# New inputs that raise coverage stay in build-fuzz/corpus/; copy the useful
# ones into tests/fuzz/corpus/<name>/ so every ctest run replays them.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-60}"
shift || true
targets=("$@")
[ "${#targets[@]}" -eq 0 ] && targets=(message_fuzz stream_fuzz config_fuzz shim_wire_fuzz)

"$root/scripts/install-deps.sh"
CC=clang CXX=clang++ cmake -S "$root" -B "$root/build-fuzz" -G Ninja \
  -DMPROXY_FUZZ=ON -DMPROXY_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$root/build-fuzz" --target "${targets[@]}"

for t in "${targets[@]}"; do
  corpus="${t%_fuzz}"
  work="$root/build-fuzz/corpus/$corpus"
  mkdir -p "$work"
  echo "fuzz: running $t for ${seconds}s"
  "$root/build-fuzz/tests/fuzz/$t" -max_total_time="$seconds" -print_final_stats=1 \
    "$work" "$root/tests/fuzz/corpus/$corpus" 2>&1 | tail -n 12
done
