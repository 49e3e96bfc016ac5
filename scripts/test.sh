#!/usr/bin/env bash
# Builds everything and runs the whole test suite with ctest.
#   scripts/test.sh            normal build in build/
#   scripts/test.sh --asan     AddressSanitizer + UBSan build in build-asan/
# Installs the Debian packages it needs first (scripts/install-deps.sh).
# Extra arguments after -- go to ctest (e.g. -- -R proto).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
cmake_args=(-DMPROXY_WERROR=ON)
if [ "${1:-}" = "--asan" ]; then
  shift
  build="$root/build-asan"
  cmake_args+=(-DMPROXY_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug)
fi
[ "${1:-}" = "--" ] && shift

"$root/scripts/install-deps.sh"

cmake -S "$root" -B "$build" -G Ninja "${cmake_args[@]}"
cmake --build "$build"

# Sanitizer reports must fail the test that triggers them.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
ctest --test-dir "$build" --output-on-failure -j "${MPROXY_TEST_JOBS:-2}" "$@"
