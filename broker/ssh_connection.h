// One SSH connection (libssh) owned by its own thread: connect, host key
// check and authentication, then any number of exec channels over time (the
// agent's long-lived stream plus short commands), with keepalives.
#pragma once

#include <libssh/libssh.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "broker/ssh_channel.h"
#include "broker/ssh_options.h"
#include "broker/transport.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace mproxy::broker {

// Events of a streaming exec channel. They run on the connection's thread,
// one at a time; they must not block for long and must not call the blocking
// methods (Connect, RunCommand, OpenExec) — those return an error there.
struct ExecCallbacks {
  std::function<void(std::string_view)> on_stdout;  // remote stdout, in chunks
  std::function<void(std::string_view)> on_stderr;  // remote stderr, whole lines
  // Once, last: Ok when the command exited 0; otherwise why it ended (exit
  // status, signal, or "connection to ... lost: ...").
  std::function<void(const Status&)> on_closed;
  // After each read round that delivered stdout (optional).
  std::function<void()> on_round_end;
};

// Owned by the broker's session (or a transport). libssh is blocking and not
// thread-safe, so only the connection's own thread ever touches the session;
// the public methods are thread-safe and talk to it through a queue and an
// eventfd. Connect, RunCommand and OpenExec block the caller: never call them
// on the libuv loop thread. Send, SendEof and CloseChannel never block on the
// network.
class SshConnection {
 public:
  using ChannelId = std::uint64_t;

  explicit SshConnection(SshOptions options);
  ~SshConnection();  // Close()
  SshConnection(const SshConnection&) = delete;
  SshConnection& operator=(const SshConnection&) = delete;

  // Starts the thread; connects, verifies the host key, authenticates.
  // Blocks until that is done. Call once.
  Status Connect();

  // "user@host:port" after the config was applied (valid after Connect).
  std::string Describe() const;

  // Runs `command` (through the remote login shell, as ssh does) on a fresh
  // channel, writes `input` to its stdin followed by EOF, and waits for it to
  // end. Blocks.
  Result<CommandResult> RunCommand(const std::string& command, std::string_view input);

  // Starts `command` on a new channel whose output goes to `callbacks`.
  // Blocks until the server accepted the exec request.
  Result<ChannelId> OpenExec(const std::string& command, ExecCallbacks callbacks);

  // Queues bytes for the channel's stdin (written as the peer's window
  // allows). Unknown or finished channels: ignored.
  void Send(ChannelId id, std::string bytes);
  // Sends EOF on the channel's stdin after the queued bytes.
  void SendEof(ChannelId id);
  // Stops the channel's callbacks and closes it. After it returns, no
  // callback of that channel runs or will run (also when called from one).
  void CloseChannel(ChannelId id);

  // False once the connection failed or was closed.
  bool alive() const { return alive_.load(); }

  // Disconnects, ends every channel (on_closed with an error), joins the
  // thread. Idempotent; after it returns no callback runs.
  void Close();

 private:
  // Work handed to the thread.
  struct Request {
    enum class Kind { kOpen, kSend, kEof, kClose } kind;
    ChannelId id = 0;
    std::string command;    // kOpen
    ChannelSink sink;       // kOpen
    std::string bytes;      // kSend, or kOpen: stdin written first
    bool eof_after = false; // kOpen: EOF after `bytes`
    std::promise<void>* done = nullptr;  // kClose from another thread
  };

  void ThreadMain(std::promise<Status> connected);
  Status ConnectOnThread();
  void Loop();
  void TakeRequests();
  Status CheckKeepalive(int* timeout_ms);
  void EndAll(const Status& why);
  void Post(Request request);
  bool OnThread() const { return std::this_thread::get_id() == thread_id_.load(); }
  static int OnWake(int fd, int revents, void* self) noexcept;

  const SshOptions options_;
  SshTarget target_;  // written by the thread before Connect returns

  std::thread thread_;
  std::atomic<std::thread::id> thread_id_{};
  std::atomic<bool> alive_{false};
  std::atomic<ChannelId> next_id_{1};
  UniqueFd wake_fd_;  // eventfd: Post() -> thread

  std::mutex mu_;  // guards requests_, stopping_, end_status_
  std::deque<Request> requests_;
  bool stopping_ = false;
  Status end_status_;

  // Only the connection's thread touches these.
  ssh_session session_ = nullptr;
  ssh_event event_ = nullptr;
  std::map<ChannelId, std::unique_ptr<SshChannel>> channels_;
  ssh_counter_struct socket_counter_{};
  ssh_counter_struct raw_counter_{};
  std::uint64_t last_in_bytes_ = 0;
  std::chrono::steady_clock::time_point last_heard_;
  int probes_sent_ = 0;
};

}  // namespace mproxy::broker
