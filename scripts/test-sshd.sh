#!/usr/bin/env bash
# A throwaway OpenSSH sshd on a free 127.0.0.1 port, for tests and benchmarks.
#
#   scripts/test-sshd.sh start DIR [--user NAME [--password PW]]
#                                                  start it; prints `export` lines
#   scripts/test-sshd.sh env DIR                   print the `export` lines again
#   scripts/test-sshd.sh stop DIR                  kill it and every session process
#   scripts/test-sshd.sh pause DIR | resume DIR     SIGSTOP / SIGCONT all of them
#   scripts/test-sshd.sh drop DIR                  end the client connections, keep listening
#
# Everything lives in DIR (created if missing): the host key (ed25519), a client
# key pair (id_ed25519), authorized_keys, known_hosts (`[127.0.0.1]:PORT ...`),
# an ssh_config with the Host alias `mproxy-test`, sshd_config, sshd.pid and
# sshd.log. Use it from a shell with:
#   eval "$(scripts/test-sshd.sh start /tmp/s)"; ssh -F "$MPROXY_TEST_SSH_CONFIG" mproxy-test true
#
# The login user: `--user NAME` (created with `useradd -m` when missing, then
# unlocked with `usermod -p '*'`, because sshd with UsePAM no refuses locked
# accounts). As root, the default is the plain account `mproxy-test`, because
# root's shell rc files here are slow and sshd runs commands through the login
# shell. As another user, the default (and only choice) is that user.
# `--password PW` (with --user) gives the account that password and lets
# sshd accept password logins, for tests of the password prompt.
#
# "Remote side" proof: as root, sshd runs in its own mount namespace
# (`unshare -m --propagation private`). Inside it a tmpfs is mounted over
# DIR/remote and DIR/remote/marker is written there, so the marker exists only
# for commands that sshd starts: locally DIR/remote is an empty directory.
# MPROXY_TEST_SSH_MARKER names the marker file; MPROXY_TEST_SSH_REMOTE_DIR is a
# writable (mode 1777) directory that exists only on the remote side. Without
# root, sshd runs in an unprivileged user+mount namespace when the kernel
# allows it, otherwise without one (then MPROXY_TEST_SSH_MARKER is empty).
#
# `stop` kills the listener and every process in its mount namespace (the
# sessions and what they started), which also serves to simulate a dead host.
# `pause` stops them all with SIGSTOP: the kernel still ACKs TCP, but nothing
# answers, like a hung host, which only keepalives can detect. Needs the
# namespace (root or unprivileged user namespaces).
set -euo pipefail

sshd_bin=/usr/sbin/sshd   # sshd re-execs itself and wants an absolute path
alias_name=mproxy-test

die() { echo "test-sshd: $*" >&2; exit 1; }

usage() {
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# A free TCP port on 127.0.0.1 in the ephemeral-ish range (not guaranteed free
# by the time sshd binds: start retries on bind failure).
pick_port() {
  local used p
  used="$(ss -Htln 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u)"
  for _ in $(seq 50); do
    p=$(( 20000 + RANDOM % 30000 ))
    if ! grep -qx "$p" <<<"$used"; then echo "$p"; return 0; fi
  done
  die "no free port found"
}

ensure_user() {
  local user="$1"
  [ "$(id -u)" -eq 0 ] || die "--user needs root"
  # Several fixtures may start at once: serialise account creation.
  exec 9>/run/lock/mproxy-test-sshd.lock
  flock 9
  if ! getent passwd "$user" >/dev/null; then
    useradd -m -s /bin/bash "$user" || die "useradd $user failed"
  fi
  # Locked accounts ('!' in shadow) are refused by sshd when UsePAM is off.
  # With --password the account gets that password instead of none.
  local hash='*'
  if [ -n "${2:-}" ]; then
    hash="$(openssl passwd -6 -stdin <<<"$2")" || die "openssl passwd failed"
  fi
  usermod -p "$hash" "$user" || die "usermod -p $user failed"
  flock -u 9
  exec 9>&-
}

write_env() {
  local dir="$1" port="$2" user="$3" marker="$4" remote_dir="$5"
  cat >"$dir/env" <<EOF
export MPROXY_TEST_SSH_DIR='$dir'
export MPROXY_TEST_SSH_HOST='127.0.0.1'
export MPROXY_TEST_SSH_PORT='$port'
export MPROXY_TEST_SSH_USER='$user'
export MPROXY_TEST_SSH_KEY='$dir/id_ed25519'
export MPROXY_TEST_SSH_KNOWN_HOSTS='$dir/known_hosts'
export MPROXY_TEST_SSH_CONFIG='$dir/ssh_config'
export MPROXY_TEST_SSH_ALIAS='$alias_name'
export MPROXY_TEST_SSH_HOST_KEY_PUB='$dir/ssh_host_ed25519_key.pub'
export MPROXY_TEST_SSH_MARKER='$marker'
export MPROXY_TEST_SSH_REMOTE_DIR='$remote_dir'
export MPROXY_TEST_SSH_PIDFILE='$dir/sshd.pid'
export MPROXY_TEST_SSH_LOG='$dir/sshd.log'
EOF
}

cmd_start() {
  local dir="$1"; shift
  local user="" password=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --user) [ $# -ge 2 ] || usage; user="$2"; shift 2 ;;
      --password) [ $# -ge 2 ] || usage; password="$2"; shift 2 ;;
      *) usage ;;
    esac
  done
  command -v ssh-keygen >/dev/null || die "ssh-keygen missing (install openssh-client)"
  [ -x "$sshd_bin" ] || die "$sshd_bin missing (install openssh-server)"

  local me; me="$(id -un)"
  if [ -z "$user" ]; then
    if [ "$(id -u)" -eq 0 ]; then user=mproxy-test; else user="$me"; fi
  fi
  if [ "$user" != "$me" ]; then ensure_user "$user" "$password"; fi
  [ -z "$password" ] || [ "$user" != "$me" ] || die "--password needs --user (an account other than yours)"

  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  [ -e "$dir/sshd.pid" ] && die "$dir/sshd.pid exists: already started? (stop it first)"
  # The login user must reach authorized_keys and DIR/remote; the private
  # client key stays 0600 to the invoking user.
  chmod 0755 "$dir"
  mkdir -p "$dir/remote"
  chmod 0755 "$dir/remote"

  [ -f "$dir/ssh_host_ed25519_key" ] ||
    ssh-keygen -q -t ed25519 -N '' -C mproxy-test-host -f "$dir/ssh_host_ed25519_key"
  [ -f "$dir/id_ed25519" ] ||
    ssh-keygen -q -t ed25519 -N '' -C mproxy-test-client -f "$dir/id_ed25519"
  install -m 0644 "$dir/id_ed25519.pub" "$dir/authorized_keys"

  if [ "$(id -u)" -eq 0 ]; then
    # Privilege separation directory (compiled-in path), absent on hosts
    # where the system sshd never ran.
    mkdir -p /run/sshd && chmod 0755 /run/sshd
  fi

  local ns_cmd=() have_ns=1
  if [ "$(id -u)" -eq 0 ]; then
    ns_cmd=(unshare -m --propagation private)
  elif unshare --user --map-current-user -m true 2>/dev/null; then
    ns_cmd=(unshare --user --map-current-user -m --propagation private)
  else
    have_ns=0
  fi

  local port attempt started=0
  for attempt in $(seq 10); do
    port="$(pick_port)"
    cat >"$dir/sshd_config" <<EOF
# Generated by scripts/test-sshd.sh for tests: loopback only, keys only.
Port $port
ListenAddress 127.0.0.1
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
AllowUsers $user
UsePAM no
# DIR usually sits under /tmp (mode 1777), which StrictModes rejects as a
# parent of authorized_keys; the files themselves are not group/world-writable.
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication $([ -n "$password" ] && echo yes || echo no)
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AcceptEnv LANG LC_* TERM
Subsystem sftp internal-sftp
# Tests open many connections and sessions at once.
MaxStartups 200
MaxSessions 10
LogLevel VERBOSE
EOF
    rm -f "$dir/sshd.pid"
    : >>"$dir/sshd.log"
    local script
    # shellcheck disable=SC2016
    script='set -e
if [ "$1" = 1 ]; then
  mount -t tmpfs -o mode=1777,size=64m mproxy-remote "$2/remote"
  echo "mproxy remote side, port $3" >"$2/remote/marker"
  chmod 0644 "$2/remote/marker"
fi
exec '"$sshd_bin"' -f "$2/sshd_config" -E "$2/sshd.log"'
    if "${ns_cmd[@]}" sh -c "$script" sh "$have_ns" "$dir" "$port" </dev/null >>"$dir/sshd.log" 2>&1; then
      # sshd binds before it daemonises, so once the pid file exists it listens.
      for _ in $(seq 100); do
        [ -s "$dir/sshd.pid" ] && break
        sleep 0.05
      done
      if [ -s "$dir/sshd.pid" ]; then started=1; break; fi
    fi
    if ! tail -n 5 "$dir/sshd.log" | grep -q "Address already in use\|Cannot bind"; then
      break
    fi
  done
  if [ "$started" -ne 1 ]; then
    echo "test-sshd: sshd did not start; last lines of $dir/sshd.log:" >&2
    tail -n 10 "$dir/sshd.log" >&2 || true
    exit 1
  fi

  local hostkey
  hostkey="$(awk '{print $1" "$2}' "$dir/ssh_host_ed25519_key.pub")"
  echo "[127.0.0.1]:$port $hostkey" >"$dir/known_hosts"
  cat >"$dir/ssh_config" <<EOF
Host $alias_name
  HostName 127.0.0.1
  Port $port
  User $user
  IdentityFile $dir/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $dir/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
EOF
  local marker="" remote_dir=""
  if [ "$have_ns" -eq 1 ]; then
    marker="$dir/remote/marker"
    remote_dir="$dir/remote"
    # The namespace, so `stop` can find every process that lives in it.
    readlink "/proc/$(cat "$dir/sshd.pid")/ns/mnt" >"$dir/mntns"
  fi
  write_env "$dir" "$port" "$user" "$marker" "$remote_dir"
  cat "$dir/env"
}

cmd_env() {
  local dir="$1"
  [ -f "$dir/env" ] || die "$dir/env missing: not started"
  cat "$dir/env"
}

# Every pid whose mount namespace is the sshd's (the listener, the sessions,
# and everything they started). Empty when there is no namespace.
ns_pids() {
  local dir="$1" ns p
  [ -s "$dir/mntns" ] || return 0
  ns="$(cat "$dir/mntns")"
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] && echo "${p#/proc/}"
  done
  return 0
}

cmd_stop() {
  local dir="$1" pid="" pids
  [ -d "$dir" ] || die "$dir: no such directory"
  [ -s "$dir/sshd.pid" ] && pid="$(cat "$dir/sshd.pid")"
  pids="$(ns_pids "$dir")"
  # Only signal the listener if it still is an sshd (pids get reused).
  if [ -n "$pid" ] && grep -q sshd "/proc/$pid/comm" 2>/dev/null; then
    pids="$pids $pid"
  fi
  if [ -n "${pids// /}" ]; then
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    for _ in $(seq 100); do
      local alive=0 p
      for p in $pids; do
        # A zombie is dead enough: init reaps it.
        if [ -r "/proc/$p/stat" ] && ! awk '{exit ($3 == "Z") ? 0 : 1}' "/proc/$p/stat" 2>/dev/null; then
          alive=1
        fi
      done
      [ "$alive" -eq 0 ] && break
      sleep 0.02
    done
  fi
  rm -f "$dir/sshd.pid" "$dir/mntns"
}

cmd_signal() {
  local dir="$1" sig="$2" pids
  pids="$(ns_pids "$dir")"
  [ -n "$pids" ] || die "no processes found for $dir (no namespace, or not running)"
  # shellcheck disable=SC2086
  kill "-$sig" $pids
}

# Ends every client connection (the listener's children) and keeps the
# listener: like a network drop, after which clients can connect again.
cmd_drop() {
  local dir="$1" pid children
  [ -s "$dir/sshd.pid" ] || die "$dir: not running"
  pid="$(cat "$dir/sshd.pid")"
  children="$(pgrep -P "$pid" || true)"
  [ -n "$children" ] || die "no client connections to drop"
  # shellcheck disable=SC2086
  kill -TERM $children
}

[ $# -ge 2 ] || usage
case "$1" in
  start) shift; cmd_start "$@" ;;
  env) cmd_env "$2" ;;
  stop) cmd_stop "$2" ;;
  pause) cmd_signal "$2" STOP ;;
  resume) cmd_signal "$2" CONT ;;
  drop) cmd_drop "$2" ;;
  *) usage ;;
esac
