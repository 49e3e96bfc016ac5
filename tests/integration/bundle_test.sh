#!/usr/bin/env bash
# Proves a bundle (scripts/bundle-agent.sh) deploys and runs on a userland that
# is not this machine's: Debian 11 (glibc 2.31) or a root holding nothing but a
# static busybox. Deploys with packaging/agent/install.sh inside the chroot,
# then checks exact output bytes and exit codes. Exit 77 = skipped, with reason.
#
# usage: bundle_test.sh bullseye|busybox BUNDLE_OUTDIR probe|version
#   probe:   the program is tests/integration/bundle_probe
#   version: the program is mproxy-agent; `--version` must print what the same
#            binary prints on this machine
set -uo pipefail

userland=${1:?usage}
outdir=${2:?usage}
mode=${3:?usage}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

skip() {
  echo "SKIPPED: $*"
  exit 77
}
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

[ "$(id -u)" -eq 0 ] || skip "chroot needs root"
chroot_bin=$(command -v chroot) || skip "chroot is not installed"
unshare_bin=$(command -v unshare) || skip "unshare is not installed"
[ -n "${MPROXY_SANITIZE_BUILD:-}" ] &&
  skip "sanitizer build: a bundled sanitizer runtime is not what ships"
for f in bundle.tar.gz bundle.sha256 install.sh tree/BUNDLE; do
  [ -f "$outdir/$f" ] || { echo "FAIL: $outdir/$f missing (build the bundle target)"; exit 1; }
done
hash=$(cat "$outdir/bundle.sha256")
name=$(sed -n 's/^program //p' "$outdir/tree/BUNDLE")

work=""
root=""
cleanup() {
  [ -n "$work" ] && rm -rf "$work"
  [ "$userland" = busybox ] && [ -n "$root" ] && rm -rf "$root"
}
trap cleanup EXIT

source "$here/userland.sh"
make_userland_root "$userland"

# Everything the test puts into the root lives under /mproxy-test.PID there.
inner=/mproxy-test.$$
work=$root$inner
mkdir -p "$work/home"
cp "$outdir/bundle.tar.gz" "$outdir/install.sh" "$work/"

if [ "$userland" = busybox ]; then
  # The root must hold no libc, loader or shared library besides the bundle.
  found=$(find "$root" -path "$work" -prune -o \( -name '*.so*' -o -name 'ld-*' \) -print)
  [ -z "$found" ] || fail "busybox root is not libc-less: $found"
  [ ! -e "$root/lib" ] && [ ! -e "$root/lib64" ] && [ ! -e "$root/usr" ] ||
    fail "busybox root has /lib, /lib64 or /usr"
fi

# Runs a command in the root with a clean environment; stdout, stderr, rc
# land in $out, $err, $rc. Extra NAME=VALUE words before the command go into
# the environment. In the Debian root /proc is mounted (the launcher finds
# itself through /proc/self/exe); the busybox root has none (AT_EXECFN).
in_root() {
  local envs=(PATH=/usr/bin:/bin HOME="$inner/home")
  while [[ $# -gt 0 && $1 == *=* ]]; do envs+=("$1"); shift; done
  local o e
  o=$(mktemp) e=$(mktemp)
  if [ "$userland" = bullseye ]; then
    env -i "${envs[@]}" "$unshare_bin" --mount --fork /bin/sh -c \
      '/bin/mount -t proc proc "$1/proc" && exec "$0" "$@"' \
      "$chroot_bin" "$root" "$@" >"$o" 2>"$e"
  else
    env -i "${envs[@]}" "$chroot_bin" "$root" "$@" >"$o" 2>"$e"
  fi
  rc=$?
  out=$(cat "$o"; echo x) out=${out%x}
  err=$(cat "$e"; echo x) err=${err%x}
  rm -f "$o" "$e"
}

expect() {  # expect WHAT RC OUT ERR
  local what=$1
  [ "$rc" -eq "$2" ] || fail "$what: exit $rc, expected $2"
  [ "$out" = "$3" ] || fail "$what: stdout differs:
--- expected
$3--- got
$out---"
  [ "$err" = "$4" ] || fail "$what: stderr differs:
--- expected
$4--- got
$err---"
}

cache=$inner/home/.cache/mproxy/agent
dir=$cache/$hash

# Deployment with the userland's own sh, gzip, tar and sha256sum, sent the
# way the broker sends it: the script's text as `sh -c` argument.
install="sh -c '$(cat "$outdir/install.sh")' mproxy-install"
in_root /bin/sh -c "$install $hash < $inner/bundle.tar.gz"
expect "first install" 0 "$dir
" ""
in_root /bin/sh -c "$install $hash < $inner/bundle.tar.gz"
expect "install over an existing bundle" 0 "$dir
" ""
in_root /bin/sh -c "rm -rf $dir;
  for i in 1 2 3 4; do sh $inner/install.sh $hash < $inner/bundle.tar.gz > $inner/c.\$i 2>&1 & done; wait;
  cat $inner/c.1 $inner/c.2 $inner/c.3 $inner/c.4; ls -A $cache"
expect "four concurrent installs" 0 "$dir
$dir
$dir
$dir
$hash
" ""
other=$(printf '%064d' 0)
in_root /bin/sh -c "sh $inner/install.sh $other < $inner/bundle.tar.gz; echo rc=\$?; ls -A $cache"
expect "install under a wrong hash" 0 "rc=3
$hash
" "mproxy-install: the upload does not match $other
"

host_glibc=$(getconf GNU_LIBC_VERSION | cut -d' ' -f2)
if [ "$userland" = bullseye ]; then
  in_root /usr/bin/getconf GNU_LIBC_VERSION
  [ "$out" != "glibc $host_glibc
" ] || fail "the Debian 11 root has this machine's glibc $host_glibc"
fi

case $mode in
  probe)
    probe_out() {  # probe_out ARGV0 LD_LIBRARY_PATH-as-seen
      printf '%s\n' "argv0 $1" "glibc $host_glibc" "self LD_LIBRARY_PATH=$2" \
        "cbor a3616e182a6173666d70726f78796161830121f5" "cbor-roundtrip ok" \
        "exception unwound" "timer ok" "child exit 0 signal 0" "child child-ok" \
        "child LD_LIBRARY_PATH=$2" "loop-close 0"
    }
    in_root "$dir/$name" 7
    expect "bundled probe" 7 "$(probe_out "$dir/$name" unset)
" ""
    # A caller's LD_LIBRARY_PATH, even one naming the root's own older libc,
    # neither reaches the loader's search nor gets lost for children.
    in_root LD_LIBRARY_PATH=/lib/x86_64-linux-gnu "$dir/$name" 0
    expect "bundled probe under LD_LIBRARY_PATH" 0 \
      "$(probe_out "$dir/$name" /lib/x86_64-linux-gnu)
" ""
    # Started by relative path from a shell, as a user would.
    in_root /bin/sh -c "cd $dir && exec ./$name 3"
    expect "bundled probe by relative path" 3 "$(probe_out "./$name" unset)
" ""
    ;;
  version)
    want=$("$outdir/tree/libexec/$name" --version; echo "rc=$?")
    in_root "$dir/$name" --version
    [ "$out""rc=$rc" = "$want" ] ||
      fail "bundled $name --version: got '${out}rc=$rc', this machine prints '$want'"
    [ -z "$err" ] || fail "bundled $name --version wrote to stderr: $err"
    ;;
  *) echo "FAIL: unknown mode $mode"; exit 1 ;;
esac

# Control: the same program without its bundle must not run here, or the test
# above proves nothing.
if [ "$mode" = probe ]; then control_arg=0; else control_arg=--version; fi
in_root "$dir/libexec/$name" "$control_arg"
[ "$rc" -ne 0 ] && [ -z "$out" ] ||
  fail "unbundled $name runs in the $userland root (exit $rc); this test proves nothing"
echo "control: unbundled $name in the $userland root exits $rc: $err"
if [ "$userland" = bullseye ]; then
  # Give it every bundled library but libc, libm and the loader: the root's
  # glibc 2.31 must be what stops it.
  mkdir "$work/no-libc"
  for lib in "$outdir"/tree/lib/*; do
    case ${lib##*/} in ld-* | libc.so* | libm.so*) ;; *) cp "$lib" "$work/no-libc/" ;; esac
  done
  in_root LD_LIBRARY_PATH="$inner/no-libc" "$dir/libexec/$name" "$control_arg"
  [ "$rc" -ne 0 ] && [[ $err == *"version \`GLIBC_2."*"not found"* ]] ||
    fail "unbundled $name with bundled non-libc libraries: exit $rc, stderr $err"
  echo "control: with the root's glibc it exits $rc: $err"
fi

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed in the $userland root"
  exit 1
fi
echo "PASS: $name bundle ($hash) deploys and runs in the $userland root"
