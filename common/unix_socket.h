// Unix stream sockets for the shim and the broker: connect and listen by
// path, send bytes with fds attached (SCM_RIGHTS), receive them, and ask who
// the peer is. Thin EINTR-safe wrappers; every fd is close-on-exec.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace mproxy {

// Most fds one message may carry (the kernel's SCM_MAX_FD).
inline constexpr size_t kMaxFdsPerMessage = 253;

// A blocking SOCK_STREAM socket connected to `path`. A path too long for
// sockaddr_un fails with ENAMETOOLONG without touching the filesystem.
// Errors read "connect PATH: <strerror>" and keep the errno.
Result<UniqueFd> ConnectUnix(const std::string& path);

// A SOCK_STREAM socket bound to `path` (which must not exist) and listening.
// `nonblocking` sets O_NONBLOCK on the listening socket.
Result<UniqueFd> ListenUnix(const std::string& path, bool nonblocking = false);

// accept4(CLOEXEC) retried on EINTR and ECONNABORTED. On a non-blocking
// socket with nothing pending the error carries EAGAIN.
Result<UniqueFd> AcceptUnix(int listen_fd);

// Sends all of `data` with MSG_NOSIGNAL. `fds` (at most kMaxFdsPerMessage)
// ride on the first sendmsg, so they arrive with the first byte; the rest of
// a partial write goes without them. `data` must not be empty when `fds` is
// not. For blocking sockets: EAGAIN is returned as an error, and then an
// unknown prefix of `data` may have been sent.
Status SendWithFds(int sock, std::string_view data, std::span<const int> fds);

// One recvmsg(MSG_CMSG_CLOEXEC), retried on EINTR: returns the bytes read
// into `buf` (0 at end of stream). Received fds are appended to `fds` in
// order; with `fds` null they are closed. A truncated control message
// (MSG_CTRUNC) is an error, and whatever fds did arrive are closed. On a
// non-blocking socket with nothing to read the error carries EAGAIN.
Result<size_t> RecvWithFds(int sock, void* buf, size_t len, std::vector<UniqueFd>* fds);

// The peer of a connected unix socket (SO_PEERCRED): as it was at connect().
struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};
Result<PeerCredentials> GetPeerCredentials(int sock);

}  // namespace mproxy
