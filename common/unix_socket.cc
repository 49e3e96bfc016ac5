// Unix socket helpers: sockaddr_un by path, SCM_RIGHTS both ways, SO_PEERCRED.
#include "common/unix_socket.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

namespace mproxy {
namespace {

// Room for the most fds one message may carry.
constexpr size_t kControlSize = CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage);

// Fills `addr` for `path`, or fails with ENAMETOOLONG (the kernel would
// otherwise cut the path short or refuse it with a vaguer errno).
Status MakeAddress(const std::string& path, sockaddr_un* addr) {
  *addr = sockaddr_un{};
  addr->sun_family = AF_UNIX;
  if (path.empty()) return Error("unix socket: empty path", EINVAL);
  if (path.size() >= sizeof addr->sun_path) {
    return Error("unix socket path of " + std::to_string(path.size()) +
                     " bytes is too long (at most " + std::to_string(sizeof addr->sun_path - 1) +
                     "): " + path,
                 ENAMETOOLONG);
  }
  std::memcpy(addr->sun_path, path.data(), path.size());
  return Ok();
}

}  // namespace

Result<UniqueFd> ConnectUnix(const std::string& path) {
  sockaddr_un addr;
  if (auto s = MakeAddress(path, &addr); !s) return s.error();
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::FromErrno("socket", errno);
  for (;;) {
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) break;
    // An interrupted unix connect has not connected; a retry either does or
    // finds the connection already made.
    if (errno == EINTR) continue;
    if (errno == EISCONN) break;
    return Error::FromErrno("connect " + path, errno);
  }
  return fd;
}

Result<UniqueFd> ListenUnix(const std::string& path, bool nonblocking) {
  sockaddr_un addr;
  if (auto s = MakeAddress(path, &addr); !s) return s.error();
  int type = SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0);
  UniqueFd fd(::socket(AF_UNIX, type, 0));
  if (!fd) return Error::FromErrno("socket", errno);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    return Error::FromErrno("bind " + path, errno);
  }
  if (::listen(fd.get(), SOMAXCONN) != 0) return Error::FromErrno("listen " + path, errno);
  return fd;
}

Result<UniqueFd> AcceptUnix(int listen_fd) {
  for (;;) {
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) return UniqueFd(fd);
    if (errno == EINTR || errno == ECONNABORTED) continue;
    return Error::FromErrno("accept", errno);
  }
}

Status SendWithFds(int sock, std::string_view data, std::span<const int> fds) {
  if (fds.size() > kMaxFdsPerMessage) {
    return Error("sendmsg: " + std::to_string(fds.size()) + " fds, at most " +
                     std::to_string(kMaxFdsPerMessage) + " per message",
                 EINVAL);
  }
  if (data.empty() && !fds.empty()) {
    return Error("sendmsg: fds need at least one byte to travel with", EINVAL);
  }
  alignas(cmsghdr) char control[kControlSize];
  bool attach = !fds.empty();
  while (!data.empty()) {
    iovec iov{const_cast<char*>(data.data()), data.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (attach) {
      std::memset(control, 0, sizeof control);
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    ssize_t n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;  // nothing was sent, fds included
      return Error::FromErrno("sendmsg", errno);
    }
    attach = false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Ok();
}

Result<size_t> RecvWithFds(int sock, void* buf, size_t len, std::vector<UniqueFd>* fds) {
  alignas(cmsghdr) char control[kControlSize];
  iovec iov{buf, len};
  msghdr msg{};
  ssize_t n;
  for (;;) {
    msg = msghdr{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n >= 0) break;
    if (errno != EINTR) return Error::FromErrno("recvmsg", errno);
  }
  // Take ownership of everything that arrived before judging any of it.
  std::vector<UniqueFd> got;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char* p = CMSG_DATA(c);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, p + i * sizeof(int), sizeof fd);
      got.emplace_back(fd);
    }
  }
  if (msg.msg_flags & MSG_CTRUNC) {
    return Error("recvmsg: control data truncated (MSG_CTRUNC); " + std::to_string(got.size()) +
                     " received fds closed",
                 EMSGSIZE);
  }
  if (fds != nullptr) {
    for (auto& fd : got) fds->push_back(std::move(fd));
  }
  return static_cast<size_t>(n);
}

Result<PeerCredentials> GetPeerCredentials(int sock) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return Error::FromErrno("getsockopt SO_PEERCRED", errno);
  }
  return PeerCredentials{cred.pid, cred.uid, cred.gid};
}

}  // namespace mproxy
