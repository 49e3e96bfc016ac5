#!/usr/bin/env bash
# run_local.sh PROGRAM: runs a workspace test program (ws_conformance or
# real_tools.sh) against a fresh local directory, as the reference the FUSE
# mount is compared with. Fails if the program leaves anything behind.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 PROGRAM" >&2
  exit 2
fi
dir=$(mktemp -d /tmp/mproxy-ws-local.XXXXXX)
trap 'rm -rf "$dir"' EXIT

rc=0
"$1" "$dir" || rc=$?
left=$(ls -A "$dir")
if [ -n "$left" ]; then
  echo "FAIL cleanup: expected $dir empty after the run, got: $left"
  [ "$rc" -ne 0 ] || rc=1
fi
exit "$rc"
