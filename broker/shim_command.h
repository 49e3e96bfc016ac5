// The broker's side of one shim: reads its request (argv, env, cwd and the
// fds it passed), runs the command on the agent, pumps the passed fds and
// the shim's terminal traffic, relays signals and resizes, and sends the
// exit back. If the shim goes away first, the remote command is killed.
#pragma once

#include <spdlog/spdlog.h>
#include <uv.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "broker/agent_link.h"
#include "broker/local_fd.h"
#include "broker/session_policy.h"
#include "common/unique_fd.h"
#include "proto/shim_wire.h"

namespace mproxy::broker {

// What every shim request of a session shares. Owned by the session, which
// outlives its commands; loop thread only.
struct SessionContext {
  // The link new commands open their channels on; a command keeps the one
  // it started on (the session replaces this after a reconnect, and keeps
  // the old link alive until it ends).
  AgentLink* link = nullptr;
  std::string host_label;
  std::vector<std::string> launch_env;  // the entrypoint's environment at start
  EnvPolicy env_policy;
  std::vector<Mount> mounts;
  std::string remote_home;
  std::string stub_dir;
  // Runs when a remote command has exited, before the shim hears of it;
  // calls its argument (on the loop thread) when the exit may go on. The
  // workspaces drop what their caches may hold in between, so the program
  // sees what the command wrote. Unset: the exit goes on at once.
  std::function<void(std::function<void()>)> before_exit;
};

// One accepted shim connection. Owned by the session's list of commands;
// `on_done` tells the owner it may destroy this object (it is called from
// the loop, never from inside the constructor). Loop thread only.
class ShimCommand : public ChannelHandler {
 public:
  ShimCommand(uv_loop_t* loop, const SessionContext* ctx, UniqueFd sock,
              std::function<void(ShimCommand*)> on_done);
  ~ShimCommand() override;
  ShimCommand(const ShimCommand&) = delete;
  ShimCommand& operator=(const ShimCommand&) = delete;

  void Start();
  // The session is ending: the shim is told it lost the session.
  void Abandon(const std::string& why);

  // ChannelHandler
  void OnData(uint32_t fd, std::string_view bytes) override;
  void OnEof(uint32_t fd) override;
  void OnWritable(uint32_t fd) override;
  void OnStopped(const proto::Stopped& stopped) override;
  void OnExit(const proto::Exit& exit) override;
  void OnChannelError(const proto::ErrorMsg& err) override;
  void OnLost(const Status& why) override;

 private:
  enum class State { kReadingRequest, kRunning, kExiting, kDone };

  struct Input {  // a passed fd the command reads
    uint32_t fd = 0;
    std::unique_ptr<LocalReader> reader;
    std::string pending;  // read, not yet accepted by the mux
    bool eof = false;
  };
  // Credit owed for Output frames still in the shim socket's buffer.
  struct OwedCredit {
    uint64_t end = 0;  // stream offset after the frame
    uint32_t fd = 0;
    size_t bytes = 0;
  };

  static void OnPoll(uv_poll_t* h, int status, int events) noexcept;
  void ReadSocket();
  void WriteSocket();
  void UpdatePoll();
  void HandleMessage(proto::shim::Message&& m);
  void StartCommand(proto::shim::Request&& req);
  void StartPumps(const proto::shim::Request& req);
  bool OnPassedInput(Input* in, std::string_view bytes);
  void PushInput(Input* in);
  void PushTerminalInput();
  void SendToShim(const proto::shim::Message& m);
  void FinishWith(uint32_t code, std::optional<std::string> signal, bool core,
                  const std::string& message);
  void FinishWhenDrained();
  void ShimGone(const std::string& why);
  void Done();

  uv_loop_t* loop_;
  const SessionContext* ctx_;
  AgentLink* link_;  // ctx_->link when this command started
  UniqueFd sock_;
  std::function<void(ShimCommand*)> on_done_;
  std::shared_ptr<spdlog::logger> log_;
  State state_ = State::kReadingRequest;
  std::string name_;  // the command's name, for messages

  uv_poll_t* poll_ = nullptr;  // freed in its close callback
  bool reading_ = true;
  proto::shim::Decoder decoder_;
  std::vector<UniqueFd> received_fds_;  // passed fds, in request order
  std::string out_;                     // encoded frames for the shim
  size_t out_head_ = 0;
  uint64_t out_written_ = 0;  // stream offset of out_[out_head_]
  uint64_t out_queued_ = 0;   // stream offset of out_.end()
  std::deque<OwedCredit> owed_;

  uint32_t channel_ = 0;
  bool open_ = false;
  std::vector<std::unique_ptr<Input>> inputs_;
  std::map<uint32_t, std::unique_ptr<LocalWriter>> writers_;  // passed output fds
  std::map<uint32_t, bool> terminal_out_;                     // tty fds the shim writes
  int terminal_input_fd_ = -1;        // stream that carries keystrokes, or -1
  std::string terminal_pending_;      // Input not yet accepted by the mux
  bool terminal_eof_ = false;
  proto::shim::Exit exit_;
  // Expires with this object: a before_exit callback that comes late finds
  // it gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace mproxy::broker
