#!/usr/bin/env bash
# Installs every Debian package mproxy needs to build, test and benchmark.
# Idempotent: packages already present are left alone. Run as root.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git clang libclang-rt-14-dev
  # libraries (fixed choices + toml++/CLI11, see README)
  libcbor-dev libssh-dev libuv1-dev libfuse3-dev libspdlog-dev catch2
  libtomlplusplus-dev libcli11-dev libssl-dev libre2-dev
  # runtime pieces the tests use for real
  openssh-server openssh-client fuse3 bubblewrap tmux procps psmisc
  iproute2 debootstrap patchelf file xxd busybox-static
  # the workspace tests (real tools on the mount) and its sshfs benchmark
  sqlite3 python3 attr sshfs
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root (or with sudo) to install them" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
