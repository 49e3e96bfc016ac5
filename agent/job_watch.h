// The agent's end of a pty command's job leader (agent/child.cc): the events
// it reports over a pipe, and a watcher that reads them on the loop.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace mproxy::agent {

// One report of the job leader: 8 bytes, written whole (below PIPE_BUF).
struct JobEvent {
  enum Kind : int32_t {
    kGroup = 1,    // value: the command's pid, also its process group
    kStopped = 2,  // value: the signal that stopped the command
    kStatus = 3,   // value: the command's wait status; the leader then exits
  };
  int32_t kind = 0;
  int32_t value = 0;
};
static_assert(sizeof(JobEvent) == 8);

// Owned by the command's channel; loop thread only. Reads every event as it
// arrives and hands it to `on_event`, which must not destroy the watcher.
class JobWatch {
 public:
  JobWatch(uv_loop_t* loop, UniqueFd events, std::function<void(const JobEvent&)> on_event);
  ~JobWatch();  // stops watching; the handle is freed in its close callback
  JobWatch(const JobWatch&) = delete;
  JobWatch& operator=(const JobWatch&) = delete;

  Status Start();
  // Reads and hands on what is in the pipe right now: once the leader has
  // been reaped, its last event (kStatus) is there.
  void Drain();

 private:
  static void OnReadable(uv_poll_t* handle, int status, int events) noexcept;

  uv_loop_t* loop_;
  uv_poll_t* poll_ = nullptr;
  UniqueFd events_;  // nonblocking
  std::function<void(const JobEvent&)> on_event_;
  std::string partial_;  // bytes of an event not whole yet
};

}  // namespace mproxy::agent
