// Session: one agent session over a pair of fds (stdin/stdout). Glues the Mux
// to the libuv loop: protocol bytes in and out, one Channel per Exec with its
// child and pumps, reaping, PathQuery, file operations (FsServer), and the
// kill-everything session end.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/fd_pump.h"
#include "agent/fs_server.h"
#include "agent/group_killer.h"
#include "agent/job_watch.h"
#include "agent/reaper.h"
#include "proto/mux.h"

namespace mproxy::agent {

struct SessionOptions {
  std::string program_version;
  // PATH searched for commands when an Exec's env has none, and listed by a
  // PathQuery without dirs: the agent's own PATH.
  std::string fallback_path;
  // Between SIGHUP and SIGKILL when a channel is closed or the session ends.
  std::chrono::milliseconds kill_grace{2000};
  int in_fd = 0;
  int out_fd = 1;
};

// Exit statuses of the agent process.
inline constexpr int kExitOk = 0;        // the peer closed the session
inline constexpr int kExitIoError = 1;   // reading or writing the stream failed
inline constexpr int kExitProtocol = 2;  // malformed or refused input

// Created and driven on the loop thread; must outlive uv_run on its loop.
// The loop returns once the session has ended and every child is gone.
class Session : public proto::MuxDelegate, public FdPumpDelegate {
 public:
  Session(uv_loop_t* loop, SessionOptions options);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session() override;

  // Sends Hello and starts reading. An error here means nothing was started.
  Status Start();
  // The process exit status once the loop has returned.
  int exit_code() const { return exit_code_; }

  // proto::MuxDelegate
  void OnHello(const proto::Hello& peer, uint32_t version) override;
  void OnMessage(proto::Message&& m) override;
  void OnData(uint32_t channel, uint32_t fd, std::string_view bytes) override;
  void OnEof(uint32_t channel, uint32_t fd) override;
  void OnWritable(uint32_t channel, uint32_t fd) override;

  // FdPumpDelegate
  void OnPumpOutput() override;
  void OnPumpFinished(FdPump* pump) override;

 private:
  struct PumpCloser {
    void operator()(FdPump* p) const { p->Close(); }
  };
  using PumpPtr = std::unique_ptr<FdPump, PumpCloser>;

  // One Exec: the child, the pumps still working, and its exit status.
  struct Channel {
    uint32_t id = 0;
    pid_t pid = -1;    // reaped: the command, or its job leader
    pid_t group = -1;  // the command's process group: signals go there
    // With a pty: the job leader's reports, and the command's wait status
    // from its last one (the leader's own status is not the command's).
    std::unique_ptr<JobWatch> job;
    std::optional<int> job_status;
    bool exited = false;
    int wait_status = 0;
    std::vector<PumpPtr> pumps;
    std::map<uint32_t, FdPump*> writers;  // input stream fd -> pump
    std::map<uint32_t, FdPump*> readers;  // output stream fd -> pump
    FdPump* pty = nullptr;                // the pump that owns the pty master
  };

  enum class State { kRunning, kEnding, kDone };

  static void AllocCallback(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) noexcept;
  static void ReadCallback(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept;
  static void WriteCallback(uv_write_t* req, int status) noexcept;

  void OnInput(ssize_t nread, const uv_buf_t* buf);
  void Flush();
  void Send(const proto::Message& m);

  void HandleExec(proto::Exec&& exec);
  void HandleSignal(const proto::Signal& s);
  void HandleResize(const proto::Resize& r);
  void HandleClose(const proto::Close& c);
  void HandlePathQuery(const proto::PathQuery& q);
  void SendFsReply(proto::FsReply&& reply);
  void SendChannelError(uint32_t channel, const std::string& text);

  void OnChildExit(pid_t pid, int wait_status);
  void OnJobEvent(uint32_t id, const JobEvent& e);
  void MaybeFinishChannel(uint32_t id);
  Channel* FindChannel(uint32_t id);

  // Ends the session: no more input, every process group HUP then KILL,
  // then handles close and the loop returns. The first call's code wins.
  void EndSession(int code, const std::string& reason);
  void Finish();

  uv_loop_t* loop_;
  SessionOptions options_;
  proto::Mux mux_;
  Reaper reaper_;
  GroupKiller killer_;
  FsServer fs_;
  uv_pipe_t in_{};
  uv_pipe_t out_{};
  uv_write_t write_req_{};
  bool stdio_open_ = false;  // in_ and out_ are initialized handles
  bool write_in_flight_ = false;
  bool flushing_ = false;
  std::string out_buf_;  // the bytes of the write in flight
  std::unique_ptr<char[]> in_buf_;
  State state_ = State::kRunning;
  int exit_code_ = kExitOk;
  std::map<uint32_t, Channel> channels_;
  std::map<pid_t, uint32_t> channel_of_pid_;
};

}  // namespace mproxy::agent
