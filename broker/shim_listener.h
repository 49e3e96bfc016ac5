// The session's unix socket that shims connect to. Only processes of this
// user may use it: the directory is 0700 and each connection's peer
// credentials are checked.
#pragma once

#include <spdlog/spdlog.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace mproxy::broker {

// Owned by the session; loop thread only. Unlinks its socket on destruction.
class ShimListener {
 public:
  using OnConnection = std::function<void(UniqueFd)>;

  // Binds and listens at `path` (its directory must already be private).
  static Result<std::unique_ptr<ShimListener>> Listen(uv_loop_t* loop, const std::string& path,
                                                      OnConnection on_connection);
  ~ShimListener();
  ShimListener(const ShimListener&) = delete;
  ShimListener& operator=(const ShimListener&) = delete;

  const std::string& path() const { return path_; }

 private:
  ShimListener(uv_loop_t* loop, UniqueFd fd, std::string path, OnConnection on_connection);
  static void OnPoll(uv_poll_t* h, int status, int events) noexcept;
  void AcceptAll();

  uv_loop_t* loop_;
  UniqueFd fd_;
  std::string path_;
  OnConnection on_connection_;
  std::shared_ptr<spdlog::logger> log_;
  uv_poll_t* poll_ = nullptr;  // freed in its close callback
};

}  // namespace mproxy::broker
