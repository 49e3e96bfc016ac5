// LoopWakeup: wakes a libuv loop from other threads, like uv_async_t but
// without its spin. libuv 1.44's uv_async_send marks the handle busy, writes
// the loop's eventfd and only then marks it done; the woken loop spins until
// it sees "done". When the sender is preempted in between (on 2 CPUs the
// thread it just woke often takes its CPU), the loop spins up to a thousand
// rounds and then yields: a measured 2% of all CPU in a workspace benchmark.
// Here the sender writes an eventfd of its own, once per batch, and nobody
// waits for anybody.
#pragma once

#include <uv.h>

#include <atomic>
#include <functional>

#include "common/result.h"
#include "common/unique_fd.h"

namespace mproxy::broker {

// Created, started and closed on the loop thread; Wake() from any thread.
// Close() before the loop ends; the callback never runs after Close().
class LoopWakeup {
 public:
  LoopWakeup() = default;
  ~LoopWakeup();
  LoopWakeup(const LoopWakeup&) = delete;
  LoopWakeup& operator=(const LoopWakeup&) = delete;

  // `on_wake` runs on the loop thread at least once after every Wake()
  // (several Wake()s before it runs may share one call).
  Status Start(uv_loop_t* loop, std::function<void()> on_wake);
  void Wake();
  void Close();

 private:
  static void OnPoll(uv_poll_t* handle, int status, int events) noexcept;

  UniqueFd fd_;  // eventfd, non-blocking
  uv_poll_t* poll_ = nullptr;  // freed in its close callback
  std::function<void()> on_wake_;
  std::atomic<bool> signalled_{false};  // a write is in the eventfd or on its way
};

}  // namespace mproxy::broker
