#!/bin/sh
# Remote half of an agent deployment: unpacks bundle.tar.gz from stdin, checks
# it against HASH and renames it into place. Needs only POSIX sh, gzip, tar,
# sha256sum, cut, mkdir, mv, rm (coreutils or busybox).
#
# usage: sh install.sh HASH < bundle.tar.gz
#    or: sh -c TEXT mproxy-install HASH < bundle.tar.gz
# where TEXT is this whole file inside single quotes: that form needs nothing
# on the host first, so the file holds no single quote (bundle-agent.sh checks).
# Installs to ${MPROXY_AGENT_CACHE:-$HOME/.cache/mproxy/agent}/HASH and prints
# that directory. Exit 0: installed, or already present and intact; 2: bad
# usage; 3: the upload does not match HASH; 1: anything else.
# Concurrent runs are safe: each unpacks into its own 0700 temporary directory
# and rename(2) never replaces a non-empty directory, so a bundle an agent is
# running from is never overwritten.
set -eu

hash=${1:-}
case $hash in
  *[!0-9a-f]* | "") echo "mproxy-install: usage: install.sh SHA256 < bundle.tar.gz" >&2; exit 2 ;;
esac
[ "${#hash}" -eq 64 ] || { echo "mproxy-install: $hash is not a sha256" >&2; exit 2; }
cache=${MPROXY_AGENT_CACHE:-${HOME:?HOME is not set}/.cache/mproxy/agent}
final=$cache/$hash
umask 077
mkdir -p "$cache"
chmod 0700 "$cache"

# True when DIR holds exactly the bundle named by $hash.
intact() {
  [ -f "$1/MANIFEST" ] || return 1
  (
    cd "$1" &&
      [ "$(sha256sum MANIFEST | cut -c1-64)" = "$hash" ] &&
      sha256sum -c MANIFEST >/dev/null 2>&1
  )
}

# Leftovers of installs that died more than a day ago; best effort.
find "$cache" -maxdepth 1 -name ".tmp.*" -mmin +1440 -exec rm -rf {} + 2>/dev/null || true

tmp=$cache/.tmp.$$
n=0
until mkdir "$tmp" 2>/dev/null; do
  n=$((n + 1))
  [ "$n" -lt 100 ] || { echo "mproxy-install: cannot create a directory in $cache" >&2; exit 1; }
  tmp=$cache/.tmp.$$.$n
done
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
trap "exit 1" HUP INT TERM

mkdir "$tmp/$hash"
if ! gzip -dc | (cd "$tmp/$hash" && tar -xf -); then
  echo "mproxy-install: cannot unpack the upload" >&2
  exit 3
fi
if ! intact "$tmp/$hash"; then
  echo "mproxy-install: the upload does not match $hash" >&2
  exit 3
fi

# "mv DIR CACHE/" renames to CACHE/HASH and fails if that is a non-empty
# directory: whoever renames first wins, everyone else finds it intact.
if ! mv "$tmp/$hash" "$cache/" 2>/dev/null; then
  if ! intact "$final"; then
    # A damaged copy (disk full, manual edits): move it aside, never delete
    # it, since an agent may still be running from it.
    mv "$final" "$tmp/damaged" 2>/dev/null || true
    mv "$tmp/$hash" "$cache/"
    mv "$tmp/damaged" "$cache/.damaged.$hash.$$" 2>/dev/null || true
  fi
fi
intact "$final" || { echo "mproxy-install: $final is not intact after install" >&2; exit 1; }
echo "$final"
