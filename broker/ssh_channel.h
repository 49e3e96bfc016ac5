// One exec channel on an SSH connection: opens a session channel, runs a
// command, writes queued stdin as the peer's window allows, and hands stdout
// and stderr to a sink. Driven by SshConnection's thread with libssh in
// nonblocking mode.
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include <functional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace mproxy::broker {

// How a channel's command ended.
struct ChannelExit {
  Status status;        // an error if the channel failed or the connection died
  int exit_code = -1;   // exit status, 128+n when killed by a signal, -1 unknown
  std::string signal;   // "TERM" when killed by a signal
};

// Where a channel's events go. All run on the connection's thread.
struct ChannelSink {
  std::function<void(std::string_view)> on_stdout;
  std::function<void(std::string_view)> on_stderr;   // whole lines, with '\n'
  std::function<void(const Status&)> on_started;     // exec accepted, or why not
  std::function<void(const ChannelExit&)> on_finished;  // last event, once
  // The end of a burst of stdout: at the start of a Pump() that follows
  // delivered stdout, unless that Pump() was told more input is already
  // waiting on the socket (then the burst goes on, up to kMaxBurst bytes).
  std::function<void()> on_round_end;
};

// Owned by SshConnection; every method runs on the connection's thread.
class SshChannel {
 public:
  SshChannel(ssh_session session, std::string command, ChannelSink sink);
  ~SshChannel();
  SshChannel(const SshChannel&) = delete;
  SshChannel& operator=(const SshChannel&) = delete;

  void QueueInput(std::string data);
  void QueueEof();

  // Makes whatever progress is possible without blocking: open, exec, write
  // stdin, send EOF, notice the end. Returns true once finished (the sink's
  // on_finished has run and the channel can be destroyed). `more_input`:
  // the socket already has more bytes to read, so the end of a burst of
  // stdout may wait for them.
  bool Pump(bool more_input = false);

  // Stdout a burst may gather before on_round_end runs anyway.
  static constexpr size_t kMaxBurst = 256 * 1024;

  // Stdout delivered whose on_round_end is still to come.
  bool holding_burst() const { return burst_ > 0; }

  // The connection is gone or closing: finish now with `why`.
  void Fail(const Status& why);

  // The owner no longer wants events: drop the sink, close the channel (the
  // remote command sees EOF and a closed channel). Pump() then returns true.
  void Abandon();

 private:
  enum class State { kNew, kOpening, kExecRequested, kRunning, kFinished };

  static int OnData(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr,
                    void* self) noexcept;
  static void OnClose(ssh_session, ssh_channel, void* self) noexcept;
  static void OnExitStatus(ssh_session, ssh_channel, int status, void* self) noexcept;
  static void OnExitSignal(ssh_session, ssh_channel, const char* signal, int core,
                           const char* errmsg, const char* lang, void* self) noexcept;

  void HandleData(const char* data, size_t len, bool is_stderr);
  size_t burst_ = 0;  // stdout bytes delivered since the last on_round_end
  Status WriteInput();
  void Finish(ChannelExit exit);
  std::string Describe() const;

  ssh_session session_;
  ssh_channel channel_ = nullptr;
  std::string command_;
  ChannelSink sink_;
  // A sink dropped by Abandon() while one of its functions may be running
  // (Abandon can be called from inside a callback); freed with the channel.
  ChannelSink dropped_sink_;
  ssh_channel_callbacks_struct callbacks_{};
  State state_ = State::kNew;

  std::string input_;          // stdin bytes not yet written
  size_t input_offset_ = 0;    // how much of input_ has been written
  bool eof_queued_ = false;
  bool eof_sent_ = false;
  std::string stderr_partial_;  // an incomplete stderr line
  bool remote_closed_ = false;
  int exit_code_ = -1;
  std::string exit_signal_;
};

}  // namespace mproxy::broker
