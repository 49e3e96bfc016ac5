#!/bin/sh
# Prints the path of a cached `debootstrap --variant=minbase` userland of an
# older Debian release, creating it on first use. Exit 77 when it cannot be had.
#
# usage: debian_rootfs.sh SUITE [MIRROR]
# The cache lives in $MPROXY_TEST_CACHE (default /var/cache/mproxy-test)/SUITE
# and is shared by every build tree and test run on this machine; a flock makes
# concurrent callers wait for one debootstrap instead of racing.
set -eu

suite=${1:?usage: debian_rootfs.sh SUITE [MIRROR]}
mirror=${2:-http://deb.debian.org/debian}
cache=${MPROXY_TEST_CACHE:-/var/cache/mproxy-test}
root=$cache/$suite

skip() {
  echo "SKIPPED: $*" >&2
  exit 77
}

[ "$(id -u)" -eq 0 ] || skip "debootstrap needs root"
command -v debootstrap >/dev/null 2>&1 || skip "debootstrap is not installed (scripts/install-deps.sh)"
command -v flock >/dev/null 2>&1 || skip "flock is not installed"

mkdir -p "$cache"
exec 9>"$cache/.$suite.lock"
flock 9

# The marker is written last, so a half-finished debootstrap is never reused.
if [ ! -e "$root/.mproxy-complete" ]; then
  tmp=$cache/.$suite.partial
  rm -rf "$tmp" "$root"
  log=$cache/.$suite.debootstrap.log
  if ! debootstrap --variant=minbase "$suite" "$tmp" "$mirror" >"$log" 2>&1; then
    tail -n 5 "$log" >&2
    rm -rf "$tmp"
    skip "debootstrap $suite from $mirror failed (network?), see $log"
  fi
  # Drop the package cache: the userland is only ever used to run programs.
  rm -rf "$tmp/var/cache/apt/archives/"*.deb
  : >"$tmp/.mproxy-complete"
  mv "$tmp" "$root"
fi
echo "$root"
