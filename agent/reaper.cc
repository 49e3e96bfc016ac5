// SIGCHLD through uv_signal, then a waitpid(-1) loop: signals coalesce, so
// one SIGCHLD may stand for many exits.
#include "agent/reaper.h"

#include <sys/prctl.h>
#include <sys/wait.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "agent/log.h"

namespace mproxy::agent {

Reaper::Reaper(uv_loop_t* loop, ExitCallback on_exit) : on_exit_(std::move(on_exit)) {
  uv_signal_init(loop, &signal_);
  signal_.data = this;
}

Status Reaper::Start() {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    Logf(LogLevel::kWarn, "PR_SET_CHILD_SUBREAPER: %s (orphans go to init)", std::strerror(errno));
  }
  if (int rc = uv_signal_start(&signal_, SignalCallback, SIGCHLD); rc < 0) {
    return Error(std::string("uv_signal_start(SIGCHLD): ") + uv_strerror(rc));
  }
  started_ = true;
  ReapAll();
  return Ok();
}

void Reaper::ReapAll() {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) return;  // 0: children still running; ECHILD: none left
    on_exit_(pid, status);
  }
}

void Reaper::SignalCallback(uv_signal_t* handle, int /*signum*/) noexcept {
  static_cast<Reaper*>(handle->data)->ReapAll();
}

void Reaper::Close() {
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&signal_))) return;
  uv_close(reinterpret_cast<uv_handle_t*>(&signal_), nullptr);
}

}  // namespace mproxy::agent
