// ShimListener: accept shim connections from this user only.
#include "broker/shim_listener.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "broker/logging.h"

namespace mproxy::broker {

Result<std::unique_ptr<ShimListener>> ShimListener::Listen(uv_loop_t* loop, const std::string& path,
                                                           OnConnection on_connection) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return Error("socket path too long (" + std::to_string(path.size()) + " bytes): " + path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Error::FromErrno("socket", errno);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Error::FromErrno("bind " + path, errno);
  }
  if (listen(fd.get(), SOMAXCONN) != 0) return Error::FromErrno("listen " + path, errno);
  std::unique_ptr<ShimListener> l(
      new ShimListener(loop, std::move(fd), path, std::move(on_connection)));
  l->poll_ = new uv_poll_t;
  uv_poll_init(loop, l->poll_, l->fd_.get());
  l->poll_->data = l.get();
  uv_poll_start(l->poll_, UV_READABLE, &ShimListener::OnPoll);
  return l;
}

ShimListener::ShimListener(uv_loop_t* loop, UniqueFd fd, std::string path,
                           OnConnection on_connection)
    : loop_(loop), fd_(std::move(fd)), path_(std::move(path)),
      on_connection_(std::move(on_connection)), log_(Log("shim")) {}

ShimListener::~ShimListener() {
  if (poll_ != nullptr) {
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_),
             [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_poll_t*>(h); });
  }
  unlink(path_.c_str());
}

void ShimListener::OnPoll(uv_poll_t* h, int status, int) noexcept {
  auto* self = static_cast<ShimListener*>(h->data);
  if (self == nullptr || status < 0) return;
  self->AcceptAll();
}

void ShimListener::AcceptAll() {
  while (true) {
    UniqueFd conn(accept4(fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!conn) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        log_->error("accept on {}: {}", path_, std::strerror(errno));
      }
      return;
    }
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(conn.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      log_->error("SO_PEERCRED on a shim connection: {}", std::strerror(errno));
      continue;
    }
    if (cred.uid != geteuid()) {
      log_->warn("refused a shim connection from uid {} (pid {}): only uid {} may use {}",
                 cred.uid, cred.pid, geteuid(), path_);
      continue;
    }
    on_connection_(std::move(conn));
  }
}

}  // namespace mproxy::broker
