// ExecCommand: local stdio <-> one remote channel.
#include "broker/exec_command.h"

#include <unistd.h>

#include <csignal>
#include <cstring>

#include "broker/logging.h"
#include "broker/remote_exit.h"
#include "common/io.h"
#include "common/signals.h"

extern char** environ;

namespace mproxy::broker {
namespace {

// Signals forwarded to the remote process group by name.
constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
// Interrupts after which mproxy stops waiting for a remote that does not end.
constexpr int kGiveUpAfterInterrupts = 3;

void PrintError(const std::string& line) {
  (void)WriteAll(STDERR_FILENO, "mproxy: " + line + "\n");
}

}  // namespace

std::vector<std::string> ExecCommand::DefaultForwardedEnv() {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    if (kv.rfind("TERM=", 0) == 0 || kv.rfind("LANG=", 0) == 0 || kv.rfind("LC_", 0) == 0) {
      env.emplace_back(kv);
    }
  }
  return env;
}

ExecCommand::ExecCommand(uv_loop_t* loop, AgentLink* link, ExecRequest req)
    : loop_(loop), link_(link), req_(std::move(req)), log_(Log("exec")) {}

ExecCommand::~ExecCommand() {
  for (uv_signal_t* s : signals_) {
    s->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(s),
             [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_signal_t*>(h); });
  }
  if (open_) link_->CloseChannel(channel_);
}

void ExecCommand::WatchSignal(int signo) {
  auto* s = new uv_signal_t;
  uv_signal_init(loop_, s);
  s->data = this;
  uv_signal_start(s, &ExecCommand::OnSignal, signo);
  signals_.push_back(s);
}

void ExecCommand::Start(std::function<void(int)> done) {
  done_ = std::move(done);
  proto::Exec exec;
  exec.path = req_.argv.empty() ? std::string() : req_.argv[0];
  exec.argv = req_.argv;
  exec.env = req_.env;
  exec.inherit_env = true;
  exec.cwd = req_.cwd;
  exec.fds = {{0, proto::FdSpec::kToChild, req_.tty},
              {1, proto::FdSpec::kFromChild, req_.tty},
              {2, proto::FdSpec::kFromChild, req_.tty}};
  if (req_.tty) {
    proto::PtySpec pty;
    const char* term = getenv("TERM");
    pty.term = term != nullptr ? term : "dumb";
    auto ws = GetWindowSize(STDOUT_FILENO);
    if (!ws) ws = GetWindowSize(STDIN_FILENO);
    if (ws) {
      pty.rows = ws->rows;
      pty.cols = ws->cols;
    }
    exec.pty = pty;
    if (isatty(STDIN_FILENO)) raw_ = std::make_unique<RawMode>(STDIN_FILENO);
  }
  auto ch = link_->OpenExec(std::move(exec), this);
  if (!ch) {
    PrintError(ch.error().message());
    return Finish(255);
  }
  channel_ = *ch;
  open_ = true;

  for (int fd : {1, 2}) {
    auto lfd = LocalFd::Open(fd, /*for_write=*/true);
    if (!lfd) continue;  // closed stdout/stderr: output is consumed and dropped
    out_[fd] = std::make_unique<LocalWriter>(
        loop_, std::move(*lfd),
        [this, fd](size_t n) { link_->Consume(channel_, fd, n); },
        [this, fd](const Status& why) {
          log_->debug("local fd {}: {}", fd, why.error().message());
          // Like a local pipeline: the writer whose reader went away gets
          // SIGPIPE.
          if (fd == 1) link_->SendSignal(channel_, "PIPE");
        });
  }
  auto in = LocalFd::Open(STDIN_FILENO, /*for_write=*/false);
  if (in) {
    stdin_ = std::make_unique<LocalReader>(
        loop_, std::move(*in), [this](std::string_view b) { return OnStdin(b); },
        [this](const Status&) {
          stdin_eof_ = true;
          if (stdin_pending_.empty()) link_->WriteEof(channel_, 0);
        });
    stdin_->Start();
  } else {
    link_->WriteEof(channel_, 0);
  }
  for (int s : kForwarded) WatchSignal(s);
}

bool ExecCommand::OnStdin(std::string_view bytes) {
  log_->trace("stdin: {} bytes read, {} pending", bytes.size(), stdin_pending_.size());
  if (!stdin_pending_.empty()) {
    stdin_pending_.append(bytes);
    return false;
  }
  size_t n = link_->Write(channel_, 0, bytes);
  if (n == bytes.size()) return true;
  stdin_pending_.assign(bytes.substr(n));
  return false;
}

void ExecCommand::PushStdin() {
  log_->trace("stdin: writable, {} pending, eof {}", stdin_pending_.size(), stdin_eof_);
  if (!stdin_pending_.empty()) {
    size_t n = link_->Write(channel_, 0, stdin_pending_);
    stdin_pending_.erase(0, n);
    if (!stdin_pending_.empty()) return;
  }
  if (stdin_eof_) {
    link_->WriteEof(channel_, 0);
  } else if (stdin_) {
    stdin_->Resume();
  }
}

void ExecCommand::OnData(uint32_t fd, std::string_view bytes) {
  if (fd < 3 && out_[fd]) {
    out_[fd]->Write(bytes);
  } else {
    link_->Consume(channel_, fd, bytes.size());
  }
}

void ExecCommand::OnEof(uint32_t) {}

void ExecCommand::OnWritable(uint32_t fd) {
  if (fd == 0) PushStdin();
}

void ExecCommand::OnStopped(const proto::Stopped&) {
  // The remote command stopped (Ctrl-Z on its terminal): so does mproxy, with
  // the terminal back in the shell's mode. SIGSTOP, since libuv may own
  // SIGTSTP's handler. When continued: raw again, and the command goes on.
  bool was_raw = raw_ && raw_->active();
  if (raw_) raw_->Restore();
  raise(SIGSTOP);
  if (was_raw) raw_ = std::make_unique<RawMode>(STDIN_FILENO);
  link_->SendSignal(channel_, "CONT");
  if (auto ws = GetWindowSize(STDOUT_FILENO)) link_->SendResize(channel_, ws->rows, ws->cols);
}

void ExecCommand::OnExit(const proto::Exit& exit) {
  open_ = false;
  if (stdin_) stdin_->Close();
  RemoteExit r = DescribeExit(exit, req_.host_label);
  // Printed after the command's own output, as a shell's message would be.
  error_after_drain_ = r.message;
  FinishWhenDrained(r.status);
}

void ExecCommand::OnChannelError(const proto::ErrorMsg& err) {
  PrintError(req_.host_label + ": " + err.text);
}

void ExecCommand::OnLost(const Status& why) {
  open_ = false;
  if (raw_) raw_->Restore();
  PrintError(why.ok() ? "lost connection to " + req_.host_label : why.error().message());
  Finish(255);
}

void ExecCommand::FinishWhenDrained(int status) {
  for (int fd : {1, 2}) {
    if (out_[fd] && out_[fd]->pending() > 0) {
      out_[fd]->WhenDrained([this, status] { FinishWhenDrained(status); });
      return;
    }
  }
  Finish(status);
}

void ExecCommand::Finish(int status) {
  if (finished_) return;
  finished_ = true;
  if (raw_) raw_->Restore();
  if (!error_after_drain_.empty()) PrintError(error_after_drain_);
  if (stdin_) stdin_->Close();
  for (auto& w : out_) {
    if (w) w->Close();
  }
  for (uv_signal_t* s : signals_) uv_signal_stop(s);
  if (done_) done_(status);
}

void ExecCommand::OnSignal(uv_signal_t* h, int signum) noexcept {
  auto* self = static_cast<ExecCommand*>(h->data);
  if (self == nullptr || self->finished_) return;
  if (signum == SIGWINCH) {
    if (!self->req_.tty) return;
    if (auto ws = GetWindowSize(STDOUT_FILENO)) {
      self->link_->SendResize(self->channel_, ws->rows, ws->cols);
    }
    return;
  }
  self->link_->SendSignal(self->channel_, SignalName(signum));
  if (signum == SIGINT && ++self->interrupts_ >= kGiveUpAfterInterrupts) {
    PrintError("interrupted; not waiting for " + self->req_.host_label + " any longer");
    self->Finish(128 + SIGINT);
  }
}

}  // namespace mproxy::broker
