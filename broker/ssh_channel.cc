// The exec channel state machine over libssh's nonblocking channel calls.
#include "broker/ssh_channel.h"

#include <algorithm>
#include <csignal>
#include <cstring>
#include <utility>

#include "common/signals.h"

namespace mproxy::broker {
namespace {

// Writes at most this much per Pump() so one busy channel cannot starve the
// others; the peer's window (about 2 MiB with OpenSSH) bounds it anyway.
constexpr size_t kMaxWritePerPump = 1 << 20;

}  // namespace

SshChannel::SshChannel(ssh_session session, std::string command, ChannelSink sink)
    : session_(session), command_(std::move(command)), sink_(std::move(sink)) {
  std::memset(&callbacks_, 0, sizeof callbacks_);
  callbacks_.userdata = this;
  callbacks_.channel_data_function = &SshChannel::OnData;
  callbacks_.channel_close_function = &SshChannel::OnClose;
  callbacks_.channel_exit_status_function = &SshChannel::OnExitStatus;
  callbacks_.channel_exit_signal_function = &SshChannel::OnExitSignal;
  ssh_callbacks_init(&callbacks_);
}

SshChannel::~SshChannel() {
  if (channel_ == nullptr) return;
  // libssh may keep the channel struct until the peer's CLOSE arrives; it
  // must not call back into this object after now.
  ssh_remove_channel_callbacks(channel_, &callbacks_);
  if (ssh_channel_is_open(channel_)) ssh_channel_close(channel_);
  ssh_channel_free(channel_);
}

std::string SshChannel::Describe() const { return "ssh: remote command `" + command_ + "`"; }

void SshChannel::QueueInput(std::string data) {
  if (eof_queued_ || state_ == State::kFinished) return;
  if (input_offset_ == input_.size()) {
    input_ = std::move(data);
    input_offset_ = 0;
  } else {
    if (input_offset_ > (1u << 20)) {
      input_.erase(0, input_offset_);
      input_offset_ = 0;
    }
    input_.append(data);
  }
}

void SshChannel::QueueEof() { eof_queued_ = true; }

bool SshChannel::Pump(bool more_input) {
  // One wake-up of the consumer per burst, not per 4 KiB socket read.
  if (burst_ > 0 && (!more_input || burst_ >= kMaxBurst)) {
    burst_ = 0;
    if (sink_.on_round_end) sink_.on_round_end();
  }
  switch (state_) {
    case State::kNew:
      channel_ = ssh_channel_new(session_);
      if (channel_ == nullptr) {
        Fail(Error(Describe() + ": cannot create a channel: " + ssh_get_error(session_)));
        return true;
      }
      ssh_set_channel_callbacks(channel_, &callbacks_);
      state_ = State::kOpening;
      [[fallthrough]];

    case State::kOpening: {
      int rc = ssh_channel_open_session(channel_);
      if (rc == SSH_AGAIN) return false;
      if (rc != SSH_OK) {
        Fail(Error(Describe() + ": the server refused a session channel: " +
                   ssh_get_error(session_)));
        return true;
      }
      state_ = State::kExecRequested;
      [[fallthrough]];
    }

    case State::kExecRequested: {
      int rc = ssh_channel_request_exec(channel_, command_.c_str());
      if (rc == SSH_AGAIN) return false;
      if (rc != SSH_OK) {
        Fail(Error(Describe() + ": the server refused to run it: " + ssh_get_error(session_)));
        return true;
      }
      state_ = State::kRunning;
      if (sink_.on_started) sink_.on_started(Ok());
      [[fallthrough]];
    }

    case State::kRunning: {
      if (!remote_closed_) {
        if (Status s = WriteInput(); !s.ok()) {
          Fail(s);
          return true;
        }
      }
      if (remote_closed_) {
        ChannelExit exit;
        exit.exit_code = exit_code_;
        if (!exit_signal_.empty()) {
          exit.signal = exit_signal_;
          int n = SignalFromName(exit_signal_).value_or(0);
          exit.exit_code = n > 0 ? 128 + n : 255;
        }
        Finish(std::move(exit));
        return true;
      }
      return false;
    }

    case State::kFinished:
      return true;
  }
  return true;
}

Status SshChannel::WriteInput() {
  size_t budget = kMaxWritePerPump;
  while (input_offset_ < input_.size() && budget > 0) {
    uint32_t window = ssh_channel_window_size(channel_);
    if (window == 0) return Ok();  // the peer's WINDOW_ADJUST wakes the loop
    size_t n = std::min({input_.size() - input_offset_, static_cast<size_t>(window), budget});
    int rc = ssh_channel_write(channel_, input_.data() + input_offset_, static_cast<uint32_t>(n));
    if (rc == SSH_ERROR) {
      return Error(Describe() + ": writing its stdin failed: " + ssh_get_error(session_));
    }
    if (rc <= 0) return Ok();
    input_offset_ += static_cast<size_t>(rc);
    budget -= std::min(budget, static_cast<size_t>(rc));
  }
  if (input_offset_ == input_.size()) {
    input_.clear();
    input_offset_ = 0;
    if (eof_queued_ && !eof_sent_) {
      if (ssh_channel_send_eof(channel_) == SSH_ERROR) {
        return Error(Describe() + ": sending EOF failed: " + ssh_get_error(session_));
      }
      eof_sent_ = true;
    }
  }
  return Ok();
}

void SshChannel::Fail(const Status& why) {
  if (state_ == State::kFinished) return;
  if (state_ != State::kRunning && sink_.on_started) sink_.on_started(why);
  ChannelExit exit;
  exit.status = why;
  Finish(std::move(exit));
}

void SshChannel::Abandon() {
  dropped_sink_ = std::move(sink_);
  sink_ = ChannelSink();
  if (state_ == State::kFinished) return;
  state_ = State::kFinished;
  if (channel_ != nullptr && ssh_channel_is_open(channel_)) ssh_channel_close(channel_);
}

void SshChannel::Finish(ChannelExit exit) {
  state_ = State::kFinished;
  if (!stderr_partial_.empty() && sink_.on_stderr) sink_.on_stderr(stderr_partial_);
  stderr_partial_.clear();
  auto sink = std::move(sink_);
  sink_ = ChannelSink();
  if (sink.on_finished) sink.on_finished(exit);
}

void SshChannel::HandleData(const char* data, size_t len, bool is_stderr) {
  if (!is_stderr) {
    if (sink_.on_stdout) sink_.on_stdout(std::string_view(data, len));
    burst_ += len;
    return;
  }
  // Forward whole lines; keep the tail until its newline (or the end).
  std::string_view rest(data, len);
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) {
      stderr_partial_.append(rest);
      return;
    }
    std::string_view line = rest.substr(0, nl + 1);
    rest.remove_prefix(nl + 1);
    if (!sink_.on_stderr) {
      stderr_partial_.clear();
      continue;
    }
    if (stderr_partial_.empty()) {
      sink_.on_stderr(line);
    } else {
      stderr_partial_.append(line);
      sink_.on_stderr(stderr_partial_);
      stderr_partial_.clear();
    }
  }
}

int SshChannel::OnData(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr,
                       void* self) noexcept {
  try {
    static_cast<SshChannel*>(self)->HandleData(static_cast<const char*>(data), len,
                                               is_stderr != 0);
  } catch (...) {
    // A throwing sink must not unwind through libssh; the bytes are dropped.
  }
  return static_cast<int>(len);  // consumed: libssh grows the window
}

void SshChannel::OnClose(ssh_session, ssh_channel, void* self) noexcept {
  static_cast<SshChannel*>(self)->remote_closed_ = true;
}

void SshChannel::OnExitStatus(ssh_session, ssh_channel, int status, void* self) noexcept {
  static_cast<SshChannel*>(self)->exit_code_ = status;
}

void SshChannel::OnExitSignal(ssh_session, ssh_channel, const char* signal, int, const char*,
                              const char*, void* self) noexcept {
  try {
    static_cast<SshChannel*>(self)->exit_signal_ = signal ? signal : "?";
  } catch (...) {
  }
}

}  // namespace mproxy::broker
