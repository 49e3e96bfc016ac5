// The connection thread: blocking connect and auth, then a nonblocking
// libssh event loop over the session socket and a wake-up eventfd.
#include "broker/ssh_connection.h"

#include <libssh/server.h>  // ssh_send_keepalive (it works for clients too)
#include <poll.h>
#include <sys/eventfd.h>

#include <cerrno>
#include <cstdint>

#include "broker/ssh_auth.h"
#include "broker/ssh_host_key.h"
#include "common/io.h"

namespace mproxy::broker {
namespace {

// What libssh 0.10 reads from the socket per poll round (MAX_BUF_SIZE).
constexpr std::uint64_t kLibsshReadSize = 4096;

using Clock = std::chrono::steady_clock;

Status ExitToStatus(const std::string& command, const ChannelExit& exit) {
  if (!exit.status.ok()) return exit.status;
  if (!exit.signal.empty()) {
    return Error("ssh: remote command `" + command + "` was killed by SIG" + exit.signal);
  }
  if (exit.exit_code == 0) return Ok();
  if (exit.exit_code < 0) {
    return Error("ssh: remote command `" + command + "` ended without an exit status");
  }
  return Error("ssh: remote command `" + command + "` exited with status " +
               std::to_string(exit.exit_code));
}

}  // namespace

SshConnection::SshConnection(SshOptions options) : options_(std::move(options)) {}

SshConnection::~SshConnection() { Close(); }

std::string SshConnection::Describe() const {
  if (target_.host.empty()) return options_.host;
  return target_.ToString();
}

Status SshConnection::Connect() {
  if (thread_.joinable()) return Error("ssh: Connect called twice");
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return Error::FromErrno("ssh: eventfd", errno);
  wake_fd_.Reset(fd);
  std::promise<Status> connected;
  auto result = connected.get_future();
  thread_ = std::thread([this, p = std::move(connected)]() mutable { ThreadMain(std::move(p)); });
  return result.get();
}

void SshConnection::ThreadMain(std::promise<Status> connected) {
  thread_id_.store(std::this_thread::get_id());
  Status status = ConnectOnThread();
  bool ok = status.ok();
  if (ok) alive_.store(true);
  connected.set_value(std::move(status));
  if (ok) Loop();
  alive_.store(false);

  // Nothing new is accepted from here on; answer what is still queued.
  std::deque<Request> leftover;
  Status why;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    leftover.swap(requests_);
    why = end_status_.ok() ? Status(Error("ssh: not connected to " + Describe())) : end_status_;
  }
  for (auto& r : leftover) {
    if (r.kind == Request::Kind::kOpen) {
      if (r.sink.on_started) r.sink.on_started(why);
      if (r.sink.on_finished) r.sink.on_finished(ChannelExit{why, -1, ""});
    }
    if (r.done) r.done->set_value();
  }

  if (event_ != nullptr) {
    ssh_event_remove_fd(event_, wake_fd_.get());
    if (session_ != nullptr) ssh_event_remove_session(event_, session_);
    ssh_event_free(event_);
    event_ = nullptr;
  }
  if (session_ != nullptr) {
    if (ssh_is_connected(session_)) ssh_disconnect(session_);
    ssh_free(session_);
    session_ = nullptr;
  }
}

Status SshConnection::ConnectOnThread() {
  session_ = ssh_new();
  if (session_ == nullptr) return Error("ssh: cannot create a libssh session");
  if (Status s = ApplySshOptions(session_, options_); !s.ok()) return s;
  target_ = EffectiveTarget(session_);
  if (ssh_connect(session_) != SSH_OK) {
    return Error("ssh: cannot connect to " + target_.ToString() + ": " + ssh_get_error(session_));
  }
  target_ = EffectiveTarget(session_);  // now with paths expanded
  if (Status s = VerifyHostKey(session_, target_, options_.accept_new_host_key); !s.ok()) {
    return s;
  }
  if (Status s = Authenticate(session_, target_, options_); !s.ok()) return s;

  // Bytes received on the socket: the keepalive logic's proof of life.
  ssh_set_counters(session_, &socket_counter_, &raw_counter_);
  ssh_set_blocking(session_, 0);
  event_ = ssh_event_new();
  if (event_ == nullptr || ssh_event_add_session(event_, session_) != SSH_OK ||
      ssh_event_add_fd(event_, wake_fd_.get(), POLLIN, &SshConnection::OnWake, this) != SSH_OK) {
    return Error("ssh: cannot set up the event loop for " + target_.ToString());
  }
  return Ok();
}

int SshConnection::OnWake(int fd, int /*revents*/, void* /*self*/) noexcept {
  std::uint64_t value;
  while (::read(fd, &value, sizeof value) > 0) {
  }
  return 0;
}

void SshConnection::Post(Request request) {
  bool accepted = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_ && thread_.joinable()) {
      requests_.push_back(std::move(request));
      accepted = true;
    }
  }
  if (!accepted) {
    // The thread is gone or going: answer here.
    if (request.kind == Request::Kind::kOpen) {
      Status why = Error("ssh: not connected to " + Describe());
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!end_status_.ok()) why = end_status_;
      }
      if (request.sink.on_started) request.sink.on_started(why);
      if (request.sink.on_finished) request.sink.on_finished(ChannelExit{why, -1, ""});
    }
    if (request.done) request.done->set_value();
    return;
  }
  std::uint64_t one = 1;
  (void)WriteAll(wake_fd_.get(), std::string_view(reinterpret_cast<const char*>(&one), 8));
}

void SshConnection::TakeRequests() {
  std::deque<Request> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(requests_);
  }
  for (auto& r : batch) {
    auto it = channels_.find(r.id);
    switch (r.kind) {
      case Request::Kind::kOpen: {
        auto channel = std::make_unique<SshChannel>(session_, std::move(r.command),
                                                    std::move(r.sink));
        if (!r.bytes.empty()) channel->QueueInput(std::move(r.bytes));
        if (r.eof_after) channel->QueueEof();
        channels_.emplace(r.id, std::move(channel));
        break;
      }
      case Request::Kind::kSend:
        if (it != channels_.end()) it->second->QueueInput(std::move(r.bytes));
        break;
      case Request::Kind::kEof:
        if (it != channels_.end()) it->second->QueueEof();
        break;
      case Request::Kind::kClose:
        if (it != channels_.end()) it->second->Abandon();
        break;
    }
    if (r.done) r.done->set_value();
  }
}

void SshConnection::Loop() {
  last_heard_ = Clock::now();
  last_in_bytes_ = socket_counter_.in_bytes;
  probes_sent_ = 0;
  std::uint64_t round_start_in = socket_counter_.in_bytes;
  for (;;) {
    // libssh reads the socket 4 KiB per poll round; a full read means more
    // is probably waiting, so a channel may hold its burst of stdout for the
    // next round (which then polls without blocking: a wrong guess costs
    // one extra poll, never a stall).
    const bool more_input = socket_counter_.in_bytes - round_start_in >= kLibsshReadSize;
    round_start_in = socket_counter_.in_bytes;
    bool holding = false;
    TakeRequests();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) break;
    }
    for (auto it = channels_.begin(); it != channels_.end();) {
      if (it->second->Pump(more_input)) {
        it = channels_.erase(it);
      } else {
        holding = holding || it->second->holding_burst();
        ++it;
      }
    }
    int status = ssh_get_status(session_);
    if ((status & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0 || !ssh_is_connected(session_)) {
      EndAll(Error("ssh: connection to " + target_.ToString() + " lost: " +
                   ssh_get_error(session_)));
      return;
    }
    int timeout_ms = -1;
    if (Status s = CheckKeepalive(&timeout_ms); !s.ok()) {
      EndAll(s);
      return;
    }
    if (holding) timeout_ms = 0;
    if (ssh_event_dopoll(event_, timeout_ms) == SSH_ERROR) {
      int after = ssh_get_status(session_);
      if ((after & (SSH_CLOSED | SSH_CLOSED_ERROR)) == 0 && ssh_is_connected(session_)) {
        // poll() itself failed (not the session): do not spin.
        EndAll(Error("ssh: event loop for " + target_.ToString() + " failed: " +
                     ssh_get_error(session_)));
        return;
      }
    }
  }
  EndAll(Error("ssh: connection to " + target_.ToString() + " closed"));
}

Status SshConnection::CheckKeepalive(int* timeout_ms) {
  const auto interval = options_.keepalive_interval;
  if (interval.count() <= 0) return Ok();
  const auto now = Clock::now();
  if (socket_counter_.in_bytes != last_in_bytes_) {
    last_in_bytes_ = socket_counter_.in_bytes;
    last_heard_ = now;
    probes_sent_ = 0;
  }
  auto next = last_heard_ + interval * (probes_sent_ + 1);
  if (now >= next) {
    if (probes_sent_ >= options_.keepalive_count_max) {
      return Error("ssh: connection to " + target_.ToString() + " lost: no answer to " +
                   std::to_string(probes_sent_) + " keepalives in " +
                   std::to_string(interval.count() * probes_sent_) + "s");
    }
    // keepalive@openssh.com with want-reply; any reply is proof of life. In
    // nonblocking mode libssh finishes a previous probe before it sends a
    // new one, so the second call sends when the first only collected.
    ssh_send_keepalive(session_);
    ssh_send_keepalive(session_);
    ++probes_sent_;
    next = last_heard_ + interval * (probes_sent_ + 1);
  }
  auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count();
  *timeout_ms = static_cast<int>(std::max<long long>(1, std::min<long long>(wait, 60000)));
  return Ok();
}

void SshConnection::EndAll(const Status& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    end_status_ = why;
    stopping_ = true;
  }
  alive_.store(false);
  // Requests that raced with the end still get their answers.
  TakeRequests();
  for (auto& [id, channel] : channels_) channel->Fail(why);
  channels_.clear();
}

void SshConnection::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  if (wake_fd_) {
    std::uint64_t one = 1;
    (void)WriteAll(wake_fd_.get(), std::string_view(reinterpret_cast<const char*>(&one), 8));
  }
  if (thread_.joinable() && !OnThread()) thread_.join();
}

Result<CommandResult> SshConnection::RunCommand(const std::string& command,
                                                std::string_view input) {
  if (OnThread()) return Error("ssh: RunCommand called on the connection's own thread");
  struct Shared {
    CommandResult result;
    std::promise<Result<CommandResult>> done;
  };
  auto shared = std::make_shared<Shared>();
  auto future = shared->done.get_future();
  Request r{};
  r.kind = Request::Kind::kOpen;
  r.id = next_id_.fetch_add(1);
  r.command = command;
  r.bytes = std::string(input);
  r.eof_after = true;
  r.sink.on_stdout = [shared](std::string_view d) { shared->result.out.append(d); };
  r.sink.on_stderr = [shared](std::string_view d) { shared->result.err.append(d); };
  r.sink.on_finished = [shared](const ChannelExit& exit) {
    if (!exit.status.ok()) {
      shared->done.set_value(exit.status.error());
      return;
    }
    shared->result.exit_code = exit.exit_code;
    shared->done.set_value(std::move(shared->result));
  };
  Post(std::move(r));
  return future.get();
}

Result<SshConnection::ChannelId> SshConnection::OpenExec(const std::string& command,
                                                        ExecCallbacks callbacks) {
  if (OnThread()) return Error("ssh: OpenExec called on the connection's own thread");
  auto started = std::make_shared<std::promise<Status>>();
  auto future = started->get_future();
  auto cb = std::make_shared<ExecCallbacks>(std::move(callbacks));
  auto was_started = std::make_shared<bool>(false);
  Request r{};
  r.kind = Request::Kind::kOpen;
  r.id = next_id_.fetch_add(1);
  r.command = command;
  r.sink.on_stdout = [cb](std::string_view d) {
    if (cb->on_stdout) cb->on_stdout(d);
  };
  r.sink.on_stderr = [cb](std::string_view d) {
    if (cb->on_stderr) cb->on_stderr(d);
  };
  r.sink.on_round_end = [cb] {
    if (cb->on_round_end) cb->on_round_end();
  };
  r.sink.on_started = [started, was_started](const Status& s) {
    *was_started = s.ok();
    started->set_value(s);
  };
  r.sink.on_finished = [cb, was_started, command](const ChannelExit& exit) {
    // A channel that never started is reported by OpenExec's result alone.
    if (*was_started && cb->on_closed) cb->on_closed(ExitToStatus(command, exit));
  };
  ChannelId id = r.id;
  Post(std::move(r));
  Status s = future.get();
  if (!s.ok()) return s.error();
  return id;
}

void SshConnection::Send(ChannelId id, std::string bytes) {
  if (bytes.empty()) return;
  Request r{};
  r.kind = Request::Kind::kSend;
  r.id = id;
  r.bytes = std::move(bytes);
  Post(std::move(r));
}

void SshConnection::SendEof(ChannelId id) {
  Request r{};
  r.kind = Request::Kind::kEof;
  r.id = id;
  Post(std::move(r));
}

void SshConnection::CloseChannel(ChannelId id) {
  if (OnThread()) {
    // From inside a callback: stop the sink now; the loop frees the channel.
    if (auto it = channels_.find(id); it != channels_.end()) it->second->Abandon();
    return;
  }
  std::promise<void> done;
  auto future = done.get_future();
  Request r{};
  r.kind = Request::Kind::kClose;
  r.id = id;
  r.done = &done;
  Post(std::move(r));
  future.wait();
}

}  // namespace mproxy::broker
