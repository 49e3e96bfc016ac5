// One remote command wired to this process's stdin, stdout and stderr: the
// heart of `mproxy exec`. Streams bytes both ways with credit, forwards
// signals and window-size changes, and turns the remote Exit into a local
// exit status (128+n for a signal, 127 for a missing command, 255 when the
// connection is lost).
#pragma once

#include <spdlog/spdlog.h>
#include <uv.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/agent_link.h"
#include "broker/local_fd.h"
#include "broker/terminal.h"

namespace mproxy::broker {

struct ExecRequest {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // applied over the remote login environment
  std::string cwd;               // empty: the remote user's home
  bool tty = false;              // give the command a pty
  std::string host_label;        // for messages: "build-box"
};

// Owned by main for the duration of the command; loop thread only.
class ExecCommand : public ChannelHandler {
 public:
  ExecCommand(uv_loop_t* loop, AgentLink* link, ExecRequest req);
  ~ExecCommand() override;

  // Opens the channel and starts pumping. `done(status)` runs once with the
  // exit status mproxy should return.
  void Start(std::function<void(int)> done);

  // ChannelHandler
  void OnData(uint32_t fd, std::string_view bytes) override;
  void OnEof(uint32_t fd) override;
  void OnWritable(uint32_t fd) override;
  void OnStopped(const proto::Stopped& stopped) override;
  void OnExit(const proto::Exit& exit) override;
  void OnChannelError(const proto::ErrorMsg& err) override;
  void OnLost(const Status& why) override;

  // Builds the environment forwarded by default: TERM, LANG, LC_*.
  static std::vector<std::string> DefaultForwardedEnv();

 private:
  static void OnSignal(uv_signal_t* h, int signum) noexcept;
  bool OnStdin(std::string_view bytes);
  void PushStdin();
  void Finish(int status);
  void FinishWhenDrained(int status);
  void WatchSignal(int signo);

  uv_loop_t* loop_;
  AgentLink* link_;
  ExecRequest req_;
  std::shared_ptr<spdlog::logger> log_;  // looked up once, used per stdin chunk
  std::function<void(int)> done_;
  uint32_t channel_ = 0;
  bool open_ = false;
  bool finished_ = false;
  int interrupts_ = 0;
  std::string error_after_drain_;

  std::unique_ptr<LocalReader> stdin_;
  std::string stdin_pending_;  // read but not yet accepted by the mux
  bool stdin_eof_ = false;
  std::unique_ptr<LocalWriter> out_[3];  // indexed by fd; 0 unused
  std::unique_ptr<RawMode> raw_;
  std::vector<uv_signal_t*> signals_;
};

}  // namespace mproxy::broker
