#!/usr/bin/env bash
# Packs a dynamically linked program with every shared library it needs and
# this machine's dynamic loader into a self-contained, content-addressed bundle
# that runs on any Linux of the same architecture (see packaging/agent/README.md).
#
# usage: bundle-agent.sh [--launcher FILE] [--no-strip] BINARY OUTDIR
#
# Writes OUTDIR/tree/ (the bundle), OUTDIR/bundle.tar.gz (the same files as one
# upload), OUTDIR/bundle.sha256 (the bundle hash) and OUTDIR/install.sh (the
# remote side of a deployment). Without --launcher the static launcher is
# compiled from packaging/agent/launcher.c with ${CC:-cc}.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
packaging=$here/../packaging/agent

die() {
  echo "bundle-agent: $*" >&2
  exit 1
}

launcher=""
strip_program=1
while [ $# -gt 0 ]; do
  case $1 in
    --launcher) launcher=${2:?--launcher needs a file}; shift 2 ;;
    --no-strip) strip_program=0; shift ;;
    --) shift; break ;;
    -*) die "unknown option $1" ;;
    *) break ;;
  esac
done
[ $# -eq 2 ] || die "usage: bundle-agent.sh [--launcher FILE] [--no-strip] BINARY OUTDIR"
binary=$1
outdir=$2
[ -f "$binary" ] || die "$binary: no such file"

export LC_ALL=C
for tool in ldd readelf sha256sum tar gzip patchelf; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is needed (scripts/install-deps.sh)"
done

# Which loader this machine's binaries name, and the launcher's idea of it.
case $(uname -m) in
  x86_64) loader_name=ld-linux-x86-64.so.2 ;;
  aarch64) loader_name=ld-linux-aarch64.so.1 ;;
  *) die "no loader name known for $(uname -m)" ;;
esac

interp=$(readelf -l "$binary" 2>/dev/null |
  sed -n 's/.*\[Requesting program interpreter: \(.*\)\]/\1/p')
[ -n "$interp" ] || die "$binary has no program interpreter: a static binary needs no bundle"
[ "$(basename "$interp")" = "$loader_name" ] ||
  die "$binary asks for loader $interp, expected $loader_name"

name=$(basename "$binary")
tree=$outdir/tree
rm -rf "$tree" "$outdir/bundle.tar.gz" "$outdir/bundle.sha256"
mkdir -p "$tree/lib" "$tree/libexec"

# ldd resolves the whole closure the way the loader will at run time (RUNPATH,
# ld.so.cache, default dirs); each library is stored under the name asked for.
ldd_out=$(ldd "$binary") || die "ldd $binary failed"
if grep -q 'not found' <<<"$ldd_out"; then
  die "unresolved libraries: $(grep 'not found' <<<"$ldd_out" | tr -s ' \t\n' ' ')"
fi
while read -r soname arrow path _; do
  if [ "$arrow" = "=>" ]; then
    [ -n "$path" ] && [ "${path:0:1}" = / ] || continue  # linux-vdso.so.1 has none
    cp -L "$path" "$tree/lib/$soname"
  elif [ "${soname:0:1}" = / ]; then
    cp -L "$soname" "$tree/lib/$(basename "$soname")"  # the loader itself
  fi
done <<<"$ldd_out"
[ -f "$tree/lib/$loader_name" ] || die "ldd did not report the loader $loader_name"

if [ "$strip_program" = 1 ]; then
  strip --strip-debug -o "$tree/libexec/$name" "$binary"
else
  cp "$binary" "$tree/libexec/$name"
fi
# DT_RPATH would be searched before --library-path; a build-tree RUNPATH is
# useless remotely. The bundle's own lib/ is the only search path.
if [ -n "$(patchelf --print-rpath "$tree/libexec/$name")" ]; then
  patchelf --remove-rpath "$tree/libexec/$name"
fi

if [ -z "$launcher" ]; then
  launcher=$outdir/.launcher
  "${CC:-cc}" -std=c11 -Os -Wall -Wextra -static -s -o "$launcher" "$packaging/launcher.c"
fi
readelf -l "$launcher" | grep -q 'program interpreter' &&
  die "$launcher is not statically linked"
cp "$launcher" "$tree/$name"

# Every DT_NEEDED of every object must be in lib/, or the host would supply it.
for elf in "$tree/libexec/$name" "$tree"/lib/*; do
  for needed in $(readelf -d "$elf" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    [ -f "$tree/lib/$needed" ] || die "$(basename "$elf") needs $needed, which is not in the bundle"
  done
done

glibc=$("$tree/lib/$loader_name" --version | sed -n '1s/.* \([0-9][0-9.]*\)\.$/\1/p')
printf 'format 1\nprogram %s\narch %s\nloader %s\nglibc %s\n' \
  "$name" "$(uname -m)" "$loader_name" "${glibc:-unknown}" >"$tree/BUNDLE"

chmod 0555 "$tree/$name" "$tree/libexec/$name" "$tree/lib/$loader_name"
find "$tree/lib" -type f ! -name "$loader_name" -exec chmod 0444 {} +
chmod 0755 "$tree" "$tree/lib" "$tree/libexec"

# MANIFEST is `sha256sum` output for every other file, sorted by path; the
# bundle hash is the sha256 of MANIFEST, so it covers every byte and name.
(cd "$tree" && find . -type f ! -name MANIFEST | sed 's|^\./||' | sort |
  xargs sha256sum) >"$tree/MANIFEST"
hash=$(sha256sum "$tree/MANIFEST" | cut -d' ' -f1)
echo "$hash" >"$outdir/bundle.sha256"

# ustar, fixed owner and times, gzip -n: the archive depends only on contents.
tar -C "$tree" --format=ustar --sort=name --mtime=@0 --owner=0 --group=0 \
  --numeric-owner -cf - MANIFEST BUNDLE "$name" lib libexec |
  gzip -9n >"$outdir/bundle.tar.gz"
# The deployer sends install.sh as sh -c 'TEXT'; a quote in it would end TEXT.
if grep -q "'" "$packaging/install.sh"; then
  die "$packaging/install.sh must not contain a single quote"
fi
cp "$packaging/install.sh" "$outdir/install.sh"
rm -f "$outdir/.launcher"

echo "bundle-agent: $name $hash ($(wc -c <"$outdir/bundle.tar.gz") bytes compressed)"
