// Reaper: collects every exit status the agent is owed. The agent is a child
// subreaper, so orphaned grandchildren are reparented to it and reaped too.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <functional>

#include "common/result.h"

namespace mproxy::agent {

// Owned by the session; must outlive the loop run (its uv_signal_t is a
// member). Loop thread only.
class Reaper {
 public:
  // `on_exit(pid, wait_status)` runs for each reaped process.
  using ExitCallback = std::function<void(pid_t, int)>;

  Reaper(uv_loop_t* loop, ExitCallback on_exit);
  Reaper(const Reaper&) = delete;
  Reaper& operator=(const Reaper&) = delete;

  // Becomes a subreaper (best effort: kernels before 3.4 lack it), watches
  // SIGCHLD and reaps anything that exited already.
  Status Start();
  // waitpid(-1, WNOHANG) until nothing is left to reap.
  void ReapAll();
  // Stops watching SIGCHLD (closes the handle).
  void Close();

 private:
  static void SignalCallback(uv_signal_t* handle, int signum) noexcept;

  uv_signal_t signal_{};
  ExitCallback on_exit_;
  bool started_ = false;
};

}  // namespace mproxy::agent
