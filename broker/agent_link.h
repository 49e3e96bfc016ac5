// The broker's end of one agent session: a Mux driven by the libuv loop and
// fed by a ByteStream whose callbacks arrive on the transport's thread.
// Routes channel events to per-channel handlers and answers PathQuery.
#pragma once

#include <spdlog/spdlog.h>
#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "broker/loop_wakeup.h"
#include "broker/transport.h"
#include "proto/mux.h"

namespace mproxy::broker {

// Receives the events of one channel. Owned by whoever opened the channel;
// must outlive it (until OnExit or OnLost).
class ChannelHandler {
 public:
  virtual ~ChannelHandler() = default;
  virtual void OnStarted(const proto::Started&) {}
  virtual void OnData(uint32_t fd, std::string_view bytes) = 0;
  virtual void OnEof(uint32_t fd) = 0;
  virtual void OnWritable(uint32_t fd) = 0;
  // The command (one with a pty) stopped as a job: Ctrl-Z typed into it, or
  // a stop signal. It waits for a "CONT" Signal.
  virtual void OnStopped(const proto::Stopped&) {}
  // The command ended; the channel is closed after this returns.
  virtual void OnExit(const proto::Exit& exit) = 0;
  // The agent refused something on this channel.
  virtual void OnChannelError(const proto::ErrorMsg&) {}
  // The session ended before the command did.
  virtual void OnLost(const Status& why) = 0;
};

// Owned by the session; every method runs on the loop thread.
class AgentLink : public proto::MuxDelegate {
 public:
  AgentLink(uv_loop_t* loop, std::unique_ptr<ByteStream> stream, std::string peer_name);
  ~AgentLink() override;
  AgentLink(const AgentLink&) = delete;
  AgentLink& operator=(const AgentLink&) = delete;

  // Starts the stream. `on_ready` runs once the agent's Hello is accepted;
  // `on_lost` once when the session ends (it is not called after Shutdown).
  void Start(std::function<void(const proto::Hello&)> on_ready,
             std::function<void(const Status&)> on_lost);

  // Opens a channel for `exec` (its channel id is assigned here) and returns
  // the id. `before_exec` runs first.
  Result<uint32_t> OpenExec(proto::Exec exec, ChannelHandler* handler);
  // Run before every Exec is sent: the workspace sends the file operations
  // queued so far, so the command finds what the program wrote.
  void SetBeforeExec(std::function<void()> f) { before_exec_ = std::move(f); }
  // Channel operations. Output leaves on the next loop turn, and no handler
  // callback runs from inside these calls.
  size_t Write(uint32_t channel, uint32_t fd, std::string_view bytes);
  void WriteEof(uint32_t channel, uint32_t fd);
  void Consume(uint32_t channel, uint32_t fd, size_t n);
  void SendSignal(uint32_t channel, const std::string& name);
  void SendResize(uint32_t channel, uint32_t rows, uint32_t cols);
  // Forgets the channel; the agent kills its process group if still running.
  void CloseChannel(uint32_t channel);

  void QueryPath(std::vector<std::string> dirs,
                 std::function<void(Result<proto::PathInfo>)> done);
  // Sends one file operation (its id is assigned here). `done` runs on the
  // loop thread with the reply, or with an EIO reply when the session is
  // down or ends first: at once, from inside this call, if it is down now.
  void SendFs(proto::FsRequest request, std::function<void(proto::FsReply)> done);

  // Closes the stream; pending handlers get OnLost. Idempotent.
  void Shutdown(const Status& why);

  // Replaces Start's `on_lost` (a session takes over the link from main).
  void SetOnLost(std::function<void(const Status&)> on_lost) { on_lost_ = std::move(on_lost); }

  const std::string& peer_name() const { return peer_name_; }
  bool ready() const { return ready_; }
  // True once the link is closed or lost: nothing sent now arrives.
  bool down() const { return down_; }

  // proto::MuxDelegate
  void OnHello(const proto::Hello& peer, uint32_t version) override;
  void OnMessage(proto::Message&& m) override;
  void OnData(uint32_t channel, uint32_t fd, std::string_view bytes) override;
  void OnEof(uint32_t channel, uint32_t fd) override;
  void OnWritable(uint32_t channel, uint32_t fd) override;

 private:
  static void OnIdle(uv_idle_t* handle) noexcept;
  void Drain();
  void Flush();
  // File operations queued in the mux past this are handed to the stream at
  // once (SendFs).
  static constexpr size_t kFsFlushBacklog = 1024 * 1024;
  void ScheduleFlush();
  void Fail(const Status& why);

  uv_loop_t* loop_;
  std::unique_ptr<ByteStream> stream_;
  std::string peer_name_;
  // Looked up once: Log() takes the registry lock, and some calls sit on the
  // per-wake-up path.
  std::shared_ptr<spdlog::logger> log_;
  proto::Mux mux_;
  LoopWakeup wake_;             // the transport thread has input: Drain
  uv_idle_t* idle_ = nullptr;  // runs Flush on the next loop turn; freed on close

  // Filled by the transport thread, drained on the loop thread.
  std::mutex inbox_mu_;
  std::string inbox_;
  std::string stderr_inbox_;
  std::string drain_;  // loop thread only: what Drain() took from inbox_
  bool inbox_closed_ = false;
  Status inbox_status_;

  std::function<void(const proto::Hello&)> on_ready_;
  std::function<void(const Status&)> on_lost_;
  std::function<void()> before_exec_;
  bool ready_ = false;
  bool down_ = false;
  uint32_t next_channel_ = 1;
  uint64_t next_query_ = 1;
  std::map<uint32_t, ChannelHandler*> channels_;
  std::map<uint64_t, std::function<void(Result<proto::PathInfo>)>> path_queries_;
  uint64_t next_fs_id_ = 1;
  std::map<uint64_t, std::function<void(proto::FsReply)>> fs_requests_;
  std::string out_;
  std::string stderr_line_;
};

}  // namespace mproxy::broker
