// ShimCommand: one shim connection <-> one remote channel.
#include "broker/shim_command.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>

#include "broker/logging.h"
#include "broker/remote_exit.h"
#include "common/unix_socket.h"

namespace mproxy::broker {
namespace {

namespace shim = proto::shim;

constexpr size_t kSocketRead = 64 * 1024;
// Stop reading the shim while this much terminal input waits for credit.
constexpr size_t kMaxPendingInput = 256 * 1024;
// Marks a passed fd that is /dev/null (see StartCommand); never on the wire.
constexpr auto kNullFd = static_cast<shim::Fd::Mode>(0xff);

bool IsDevNull(int fd) {
  struct stat st {};
  return CachedFileType(fd, &st).ok() && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
}

}  // namespace

ShimCommand::ShimCommand(uv_loop_t* loop, const SessionContext* ctx, UniqueFd sock,
                         std::function<void(ShimCommand*)> on_done)
    : loop_(loop), ctx_(ctx), link_(ctx->link), sock_(std::move(sock)), on_done_(std::move(on_done)),
      log_(Log("shim")) {}

ShimCommand::~ShimCommand() {
  if (poll_ != nullptr) {
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_),
             [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_poll_t*>(h); });
  }
  for (auto& in : inputs_) in->reader->Close();
  for (auto& [fd, w] : writers_) w->Close();
  // Forgetting a running channel makes the agent kill its process group.
  if (open_) link_->CloseChannel(channel_);
}

void ShimCommand::Start() {
  poll_ = new uv_poll_t;
  if (uv_poll_init(loop_, poll_, sock_.get()) != 0) {
    delete poll_;
    poll_ = nullptr;
    log_->error("cannot watch a shim connection");
    return Done();
  }
  poll_->data = this;
  UpdatePoll();
}

void ShimCommand::UpdatePoll() {
  if (poll_ == nullptr) return;
  int events = 0;
  if (reading_ && state_ != State::kDone) events |= UV_READABLE | UV_DISCONNECT;
  if (out_head_ < out_.size()) events |= UV_WRITABLE;
  if (events == 0) {
    uv_poll_stop(poll_);
  } else {
    uv_poll_start(poll_, events, &ShimCommand::OnPoll);
  }
}

void ShimCommand::OnPoll(uv_poll_t* h, int status, int events) noexcept {
  auto* self = static_cast<ShimCommand*>(h->data);
  if (self == nullptr) return;
  if (status < 0) return self->ShimGone(uv_strerror(status));
  if (events & UV_WRITABLE) self->WriteSocket();
  if (self->state_ == State::kDone) return;
  if (events & (UV_READABLE | UV_DISCONNECT)) self->ReadSocket();
}

void ShimCommand::ReadSocket() {
  char buf[kSocketRead];
  while (reading_ && state_ != State::kDone) {
    auto n = RecvWithFds(sock_.get(), buf, sizeof buf,
                         state_ == State::kReadingRequest ? &received_fds_ : nullptr);
    if (!n) {
      if (n.error().sys_errno() == EAGAIN || n.error().sys_errno() == EWOULDBLOCK) break;
      return ShimGone(n.error().message());
    }
    if (*n == 0) return ShimGone("");
    decoder_.Feed(std::string_view(buf, *n));
    while (state_ != State::kDone) {
      auto m = decoder_.Next();
      if (!m) return ShimGone("bad frame from the shim: " + m.error().message());
      if (!*m) break;
      HandleMessage(std::move(**m));
    }
    if (received_fds_.size() > shim::kMaxPassedFds) {
      return ShimGone("the shim passed too many fds");
    }
  }
  UpdatePoll();
}

void ShimCommand::HandleMessage(shim::Message&& m) {
  if (auto* req = std::get_if<shim::Request>(&m)) {
    if (state_ != State::kReadingRequest) return ShimGone("second request from the shim");
    return StartCommand(std::move(*req));
  }
  if (state_ == State::kReadingRequest) return ShimGone("the shim spoke before its request");
  if (state_ != State::kRunning || !open_) return;  // the command already ended
  if (auto* in = std::get_if<shim::Input>(&m)) {
    if (terminal_input_fd_ < 0 || terminal_eof_) return;
    terminal_pending_.append(in->bytes);
    PushTerminalInput();
  } else if (std::holds_alternative<shim::InputEof>(m)) {
    if (terminal_input_fd_ < 0 || terminal_eof_) return;
    terminal_eof_ = true;
    PushTerminalInput();
  } else if (auto* sig = std::get_if<shim::Signal>(&m)) {
    log_->debug("{}: signal {} from the shim", name_, sig->name);
    link_->SendSignal(channel_, sig->name);
  } else if (auto* rs = std::get_if<shim::Resize>(&m)) {
    link_->SendResize(channel_, rs->rows, rs->cols);
  } else {
    ShimGone(std::string("unexpected ") + shim::TypeName(shim::TypeOf(m)) + " from the shim");
  }
}

void ShimCommand::StartCommand(shim::Request&& req) {
  name_ = CommandName(req.exe, req.argv.empty() ? "" : req.argv[0], ctx_->stub_dir);
  if (req.version != shim::kVersion) {
    return FinishWith(255, std::nullopt, false,
                      "mproxy: " + name_ + ": shim protocol " + std::to_string(req.version) +
                          " but this mproxy speaks " + std::to_string(shim::kVersion) +
                          " (mixed installations?)");
  }
  size_t passed = 0;
  for (const auto& f : req.fds) passed += f.mode == shim::Fd::Mode::kPassed;
  if (passed != received_fds_.size()) {
    return FinishWith(255, std::nullopt, false,
                      "mproxy: " + name_ + ": the shim listed " + std::to_string(passed) +
                          " fds but passed " + std::to_string(received_fds_.size()));
  }
  if (name_.empty()) {
    return FinishWith(127, std::nullopt, false, "mproxy: cannot tell which command to run");
  }
  proto::Exec exec;
  // By name: the agent looks it up on the remote PATH (the program's, when
  // it changed PATH), so a command that vanished since the enumeration gives
  // "command not found" and a new one is found where it is now.
  exec.path = name_;
  exec.argv = std::move(req.argv);
  if (exec.argv.empty()) exec.argv.push_back(name_);
  exec.env = ForwardedEnv(ctx_->launch_env, req.env, ctx_->env_policy);
  exec.inherit_env = true;
  exec.no_started = true;
  exec.cwd = req.cwd.empty() ? std::string() : MapToRemote(ctx_->mounts, req.cwd, ctx_->remote_home);
  bool any_tty = false;
  size_t next_passed = 0;
  for (auto& f : req.fds) {
    bool tty = f.mode == shim::Fd::Mode::kTerminal;
    if (!tty && IsDevNull(received_fds_[next_passed++].get()) && f.fd <= 2) {
      // The agent gives an unlisted 0, 1 or 2 its own /dev/null: nothing to
      // pump, and no Eof or output has to cross the connection.
      f.mode = kNullFd;
      continue;
    }
    any_tty = any_tty || tty;
    exec.fds.push_back({f.fd, f.to_child ? proto::FdSpec::kToChild : proto::FdSpec::kFromChild, tty});
    if (tty && !f.to_child) terminal_out_[f.fd] = true;
    // Keystrokes go into the pty through its input (fd 0), or through any
    // fd the pty serves when stdin is not the terminal (`x | less`).
    if (tty && (terminal_input_fd_ < 0 || f.fd == 0)) terminal_input_fd_ = static_cast<int>(f.fd);
  }
  if (any_tty) {
    proto::PtySpec pty;
    pty.term = req.term.empty() ? "dumb" : req.term;
    if (req.rows > 0 && req.cols > 0) {
      pty.rows = req.rows;
      pty.cols = req.cols;
    }
    exec.pty = pty;
  }
  log_->debug("{}: exec {} in {} ({} fds, {} passed, pty {})", name_, exec.path, exec.cwd,
              exec.fds.size(), received_fds_.size(), any_tty);
  auto ch = link_->OpenExec(std::move(exec), this);
  if (!ch) return FinishWith(255, std::nullopt, false, "mproxy: " + name_ + ": " + ch.error().message());
  channel_ = *ch;
  open_ = true;
  state_ = State::kRunning;
  StartPumps(req);
}

void ShimCommand::StartPumps(const shim::Request& req) {
  size_t next_passed = 0;
  for (const auto& f : req.fds) {
    if (f.mode == shim::Fd::Mode::kTerminal) continue;
    int local = received_fds_[next_passed++].get();
    if (f.mode == kNullFd) continue;
    uint32_t fd = f.fd;
    auto lfd = LocalFd::Open(local, /*for_write=*/!f.to_child);
    if (!lfd) {
      log_->warn("{}: fd {}: {}", name_, fd, lfd.error().message());
      if (f.to_child) link_->WriteEof(channel_, fd);
      continue;
    }
    if (f.to_child) {
      auto in = std::make_unique<Input>();
      in->fd = fd;
      Input* raw = in.get();
      in->reader = std::make_unique<LocalReader>(
          loop_, std::move(*lfd), [this, raw](std::string_view b) { return OnPassedInput(raw, b); },
          [this, raw](const Status&) {
            raw->eof = true;
            if (open_ && raw->pending.empty()) link_->WriteEof(channel_, raw->fd);
          });
      inputs_.push_back(std::move(in));
      raw->reader->Start();
    } else {
      writers_[fd] = std::make_unique<LocalWriter>(
          loop_, std::move(*lfd), [this, fd](size_t n) { link_->Consume(channel_, fd, n); },
          [this, fd](const Status& why) {
            log_->debug("{}: local fd {}: {}", name_, fd, why.error().message());
            // As in a local pipeline: the writer whose reader left gets SIGPIPE.
            if (fd == 1 && open_) link_->SendSignal(channel_, "PIPE");
          });
    }
  }
  // A terminal stdin that is not read (no Input yet) stays open; a command
  // without any fd 0 gets /dev/null from the agent.
}

bool ShimCommand::OnPassedInput(Input* in, std::string_view bytes) {
  if (!open_) return false;
  if (!in->pending.empty()) {
    in->pending.append(bytes);
    return false;
  }
  size_t n = link_->Write(channel_, in->fd, bytes);
  if (n == bytes.size()) return true;
  in->pending.assign(bytes.substr(n));
  return false;
}

void ShimCommand::PushInput(Input* in) {
  if (!in->pending.empty()) {
    size_t n = link_->Write(channel_, in->fd, in->pending);
    in->pending.erase(0, n);
    if (!in->pending.empty()) return;
  }
  if (in->eof) {
    link_->WriteEof(channel_, in->fd);
  } else {
    in->reader->Resume();
  }
}

void ShimCommand::PushTerminalInput() {
  if (!terminal_pending_.empty()) {
    size_t n = link_->Write(channel_, terminal_input_fd_, terminal_pending_);
    terminal_pending_.erase(0, n);
  }
  // Only a terminal stdin has an end; keys typed for `x | less` do not.
  if (terminal_pending_.empty() && terminal_eof_ && terminal_input_fd_ == 0) {
    link_->WriteEof(channel_, 0);
  }
  bool want = terminal_pending_.size() < kMaxPendingInput;
  if (want != reading_) {
    reading_ = want;
    UpdatePoll();
  }
}

void ShimCommand::OnData(uint32_t fd, std::string_view bytes) {
  if (auto it = writers_.find(fd); it != writers_.end()) {
    it->second->Write(bytes);
    return;
  }
  if (terminal_out_.count(fd) && state_ != State::kDone) {
    for (size_t off = 0; off < bytes.size(); off += shim::kMaxChunk) {
      shim::Output o;
      o.fd = fd;
      o.bytes.assign(bytes.substr(off, shim::kMaxChunk));
      size_t n = o.bytes.size();
      SendToShim(o);
      owed_.push_back({out_queued_, fd, n});
    }
    return;
  }
  link_->Consume(channel_, fd, bytes.size());
}

void ShimCommand::OnEof(uint32_t fd) {
  // The remote closed its end: close ours once written, so a local reader of
  // the same pipe sees EOF when the shim (the other holder) exits.
  if (auto it = writers_.find(fd); it != writers_.end()) {
    LocalWriter* w = it->second.get();
    w->WhenDrained([w] { w->Close(); });
  }
}

void ShimCommand::OnWritable(uint32_t fd) {
  if (static_cast<int>(fd) == terminal_input_fd_) return PushTerminalInput();
  for (auto& in : inputs_) {
    if (in->fd == fd) PushInput(in.get());
  }
}

void ShimCommand::OnStopped(const proto::Stopped& stopped) {
  // The shim stops itself too, so the program's shell sees a stopped job,
  // and sends "CONT" when it is continued.
  if (state_ == State::kRunning) SendToShim(shim::Stopped{stopped.signal});
}

void ShimCommand::OnExit(const proto::Exit& exit) {
  open_ = false;
  for (auto& in : inputs_) in->reader->Close();
  RemoteExit r = DescribeExit(exit, ctx_->host_label);
  exit_.code = static_cast<uint32_t>(r.status);
  exit_.signal = r.signal;
  exit_.core = r.core;
  exit_.message = r.message.empty() ? std::string() : "mproxy: " + r.message;
  state_ = State::kExiting;
  if (!ctx_->before_exit) return FinishWhenDrained();
  ctx_->before_exit([this, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.lock() && state_ == State::kExiting) FinishWhenDrained();
  });
}

void ShimCommand::OnChannelError(const proto::ErrorMsg& err) {
  log_->warn("{}: {}: {}", name_, ctx_->host_label, err.text);
}

void ShimCommand::OnLost(const Status& why) {
  open_ = false;
  std::string reason = why.ok() ? "lost connection to " + ctx_->host_label : why.error().message();
  FinishWith(255, std::nullopt, false, "mproxy: " + name_ + ": " + reason);
}

void ShimCommand::Abandon(const std::string& why) {
  if (state_ == State::kDone) return;
  if (open_) {
    link_->CloseChannel(channel_);
    open_ = false;
  }
  FinishWith(255, std::nullopt, false, "mproxy: " + name_ + ": " + why);
}

void ShimCommand::FinishWhenDrained() {
  for (auto& [fd, w] : writers_) {
    if (w->pending() > 0 && !w->failed()) {
      w->WhenDrained([this] { FinishWhenDrained(); });
      return;
    }
  }
  FinishWith(exit_.code, exit_.signal, exit_.core, exit_.message);
}

void ShimCommand::FinishWith(uint32_t code, std::optional<std::string> signal, bool core,
                             const std::string& message) {
  if (state_ == State::kDone) return;
  state_ = State::kDone;
  for (auto& in : inputs_) in->reader->Close();
  for (auto& [fd, w] : writers_) w->Close();
  received_fds_.clear();
  shim::Exit e;
  e.code = code;
  e.signal = std::move(signal);
  e.core = core;
  e.message = message;
  SendToShim(e);
  // Done() once the socket buffer took the Exit (or the shim left).
  if (out_head_ >= out_.size()) Done();
}

void ShimCommand::SendToShim(const shim::Message& m) {
  size_t before = out_.size();
  shim::EncodeTo(m, &out_);
  out_queued_ += out_.size() - before;
  WriteSocket();
}

void ShimCommand::WriteSocket() {
  while (out_head_ < out_.size()) {
    ssize_t n = send(sock_.get(), out_.data() + out_head_, out_.size() - out_head_,
                     MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return ShimGone(Error::FromErrno("send to the shim", errno).message());
    }
    out_head_ += static_cast<size_t>(n);
    out_written_ += static_cast<uint64_t>(n);
  }
  while (!owed_.empty() && owed_.front().end <= out_written_) {
    if (open_) link_->Consume(channel_, owed_.front().fd, owed_.front().bytes);
    owed_.pop_front();
  }
  if (out_head_ == out_.size()) {
    out_.clear();
    out_head_ = 0;
    if (state_ == State::kDone) return Done();
  } else if (out_head_ > (1u << 20)) {
    out_.erase(0, out_head_);
    out_head_ = 0;
  }
  UpdatePoll();
}

void ShimCommand::ShimGone(const std::string& why) {
  if (state_ != State::kDone && !why.empty()) log_->debug("{}: shim connection: {}", name_, why);
  if (open_) {
    log_->debug("{}: the shim went away; killing the remote command", name_);
    link_->CloseChannel(channel_);
    open_ = false;
  }
  state_ = State::kDone;
  out_.clear();
  out_head_ = 0;
  Done();
}

void ShimCommand::Done() {
  if (poll_ != nullptr) uv_poll_stop(poll_);
  if (on_done_) {
    auto done = std::move(on_done_);
    on_done_ = nullptr;
    done(this);
  }
}

}  // namespace mproxy::broker
