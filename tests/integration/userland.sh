# Sourced by the integration tests: sets $root to a userland that is not this
# machine's. `bullseye` is a cached Debian 11 (glibc 2.31) debootstrap shared
# by every run; `busybox` is a fresh directory holding only a static busybox
# (no libc, loader or shared library), which the caller removes. Calls the
# caller's skip() when the userland cannot be had.
#
# usage: make_userland_root bullseye|busybox   (then use "$root")
make_userland_root() {
  local here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  case $1 in
    bullseye)
      root=$("$here/debian_rootfs.sh" bullseye)
      local rc=$?
      [ "$rc" -eq 77 ] && skip "no Debian 11 userland (see above)"
      [ "$rc" -eq 0 ] || { echo "FAIL: debian_rootfs.sh exited $rc"; exit 1; }
      ;;
    busybox)
      local busybox=/bin/busybox
      [ -x "$busybox" ] || skip "busybox-static is not installed (scripts/install-deps.sh)"
      readelf -l "$busybox" | grep -q 'program interpreter' &&
        skip "$busybox is dynamically linked; install busybox-static"
      root=$(mktemp -d /tmp/mproxy-busybox-root.XXXXXX)
      mkdir -p "$root/bin" "$root/tmp" "$root/dev"
      # Every real host and container has /dev/null; sh redirections need it.
      mknod -m 0666 "$root/dev/null" c 1 3 || skip "cannot mknod /dev/null"
      cp "$busybox" "$root/bin/busybox"
      chroot "$root" /bin/busybox --install -s /bin
      ;;
    *) echo "FAIL: unknown userland $1"; exit 1 ;;
  esac
}
