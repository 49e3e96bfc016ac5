// The shim's side of one remote command: a poll() loop over the broker's
// socket, the terminal's stdin and a self-pipe that the signal handler feeds.
#include "shim/session.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "common/io.h"
#include "common/signals.h"
#include "common/unique_fd.h"
#include "common/unix_socket.h"
#include "shim/fds.h"
#include "shim/terminal.h"

namespace mproxy::shim {
namespace {

namespace wire = proto::shim;

// Caught and forwarded to the remote process group by name.
constexpr int kForwardedSignals[] = {SIGINT,  SIGTERM,  SIGHUP,  SIGQUIT, SIGUSR1,
                                     SIGUSR2, SIGWINCH, SIGTSTP, SIGCONT};

// Write end of the self-pipe; the only state the signal handler touches.
int g_signal_pipe = -1;

void OnSignal(int signo) {
  int saved = errno;
  auto b = static_cast<unsigned char>(signo);
  // A full pipe drops the signal; hundreds are already waiting to be sent.
  ssize_t ignored = ::write(g_signal_pipe, &b, 1);
  static_cast<void>(ignored);
  errno = saved;
}

// Whether this process may use its terminal stdin: true unless stdin is
// the controlling terminal of a session where another process group is in
// the foreground (reading or changing it would stop us with SIGTTIN or
// SIGTTOU). A terminal that is not our controlling one has no such rule.
bool MayUseTerminal(int fd) {
  pid_t fg = ::tcgetpgrp(fd);
  return fg < 0 || fg == ::getpgrp();
}

// Buffers for the loop; static so the shim's stack stays small.
char g_socket_buf[64 * 1024];
char g_stdin_buf[wire::kMaxChunk];

class Session {
 public:
  explicit Session(Invocation inv) : inv_(std::move(inv)) {}

  [[noreturn]] void Run();

 private:
  void InstallSignalHandlers();
  void Connect();
  void SendRequest();
  [[noreturn]] void Loop();

  void ReadSocket();
  void Handle(wire::Message& m);
  void WriteOutput(const wire::Output& o);
  void ReadStdin();
  void ReadSignals();
  void Forward(int signo);
  void SendResize();
  void ResumeTerminal();
  void StopWithRemote();
  void Send(const wire::Message& m);
  void SendFailed(const Error& e);

  [[noreturn]] void Finish(const wire::Exit& e);
  int FindKeyboard();
  [[noreturn]] void Fail(const std::string& line);
  [[noreturn]] void Lost(const std::string& reason);

  Invocation inv_;
  OpenFds fds_;
  UniqueFd sock_;
  UniqueFd signal_read_;
  UniqueFd signal_write_;
  RawMode raw_;
  wire::Decoder decoder_;
  std::string frame_;           // scratch for encoding
  bool terminal_[3] = {};       // which of 0, 1, 2 are the shim's terminals
  bool output_failed_[3] = {};  // writing Output to that fd failed once
  // Where keystrokes for the remote terminal are read (made raw meanwhile),
  // or -1. See FindKeyboard().
  int keyboard_fd_ = -1;
  UniqueFd tty_;  // /dev/tty, when that is the keyboard
  bool reading_stdin_ = false;
  bool stdin_eof_ = false;
  bool tstp_ignored_ = false;  // SIGTSTP was ignored when the shim started
  std::string send_error_;  // the first failed send: the broker is gone
};

void Session::Run() {
  // Before anything else opens an fd, so only inherited ones are listed.
  fds_ = CollectOpenFds(inv_.request.argv);
  bool is_open[3] = {};
  for (const wire::Fd& f : fds_.fds) {
    if (f.fd > 2) continue;
    is_open[f.fd] = true;
    terminal_[f.fd] = f.mode == wire::Fd::Mode::kTerminal;
  }
  // Hold closed standard fds with /dev/null, so the socket or the pipe
  // never becomes "fd 2" and a closing line cannot land in them.
  for (int fd = 0; fd <= 2; ++fd) {
    if (!is_open[fd]) ::open("/dev/null", O_RDWR);  // takes the lowest free number
  }
  InstallSignalHandlers();
  Connect();
  keyboard_fd_ = FindKeyboard();
  if (keyboard_fd_ >= 0 && MayUseTerminal(keyboard_fd_)) {
    raw_.Enter(keyboard_fd_);
    reading_stdin_ = true;
  }
  SendRequest();
  Loop();
}

// The shim feeds the remote terminal from the keyboard when it is the one
// that talks to the user:
//  * stdin is the terminal and stdout does not go to another process. In
//    `cmd | less` the pager reads the terminal; a shim reading it too would
//    steal its keys and undo its modes. The command's stdin is then a
//    remote terminal that gets no input, like a local command that loses
//    the race for the keyboard.
//  * stdin is not the terminal but stdout is (`grep x f | less`, `echo |
//    vim -`): programs like these read keys from /dev/tty, which remotely is
//    the pty, so the keys come from our /dev/tty.
int Session::FindKeyboard() {
  if (fds_.stdin_terminal) return fds_.stdout_to_process ? -1 : 0;
  // fd 1 must be our controlling terminal, which /dev/tty reaches.
  if (!terminal_[1] || ::tcgetsid(1) != ::getsid(0)) return -1;
  int flags = ::fcntl(1, F_GETFL);
  if (flags >= 0 && (flags & O_ACCMODE) == O_RDWR) return 1;  // as shells open it
  tty_.Reset(::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!tty_) return -1;
  return tty_.get();
}

void Session::InstallSignalHandlers() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
    Fail("mproxy: " + inv_.name + ": " + Error::FromErrno("pipe2", errno).message());
  }
  signal_read_.Reset(p[0]);
  signal_write_.Reset(p[1]);
  g_signal_pipe = p[1];
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (int signo : kForwardedSignals) {
    struct sigaction old {};
    if (::sigaction(signo, &sa, &old) != 0) continue;
    // Ignored when we started (nohup, `cmd &` in a script): a local command
    // would ignore it too, so leave it ignored and never forward it.
    if (old.sa_handler == SIG_IGN) {
      ::sigaction(signo, &old, nullptr);
      if (signo == SIGTSTP) tstp_ignored_ = true;
    }
  }
  // Our own writes (Output, the exit message) report EPIPE instead of
  // killing the shim with a status the remote command never had.
  ::signal(SIGPIPE, SIG_IGN);
}

void Session::Connect() {
  auto sock = ConnectUnix(inv_.socket_path);
  if (!sock) {
    int err = sock.error().sys_errno();
    Fail("mproxy: " + inv_.name + ": cannot reach the mproxy session at " + inv_.socket_path +
         ": " + (err != 0 ? std::strerror(err) : sock.error().message()));
  }
  sock_ = std::move(*sock);
}

void Session::SendRequest() {
  wire::Request& req = inv_.request;
  req.version = wire::kVersion;
  req.fds = fds_.fds;
  if (fds_.first_terminal >= 0) {
    const char* term = std::getenv("TERM");
    req.term = term != nullptr ? term : "";
    if (!GetWindowSize(fds_.first_terminal, &req.rows, &req.cols)) req.rows = req.cols = 0;
  }
  frame_.clear();
  wire::EncodeTo(req, &frame_);
  if (frame_.size() - 4 > wire::kMaxFrame) {
    Fail("mproxy: " + inv_.name + ": arguments and environment too large for the mproxy session (" +
         std::to_string(frame_.size() - 4) + " bytes, at most " + std::to_string(wire::kMaxFrame) +
         ")");
  }
  if (auto s = SendWithFds(sock_.get(), frame_, fds_.passed); !s) SendFailed(s.error());
  frame_ = std::string();  // the request may have been megabytes
}

void Session::Loop() {
  for (;;) {
    pollfd p[3] = {
        {sock_.get(), POLLIN, 0}, {signal_read_.get(), POLLIN, 0}, {keyboard_fd_, POLLIN, 0}};
    nfds_t n = reading_stdin_ ? 3 : 2;
    if (::poll(p, n, -1) < 0) {
      if (errno == EINTR) continue;
      Lost(Error::FromErrno("poll", errno).message());
    }
    if (p[1].revents != 0) ReadSignals();
    if (n == 3 && p[2].revents != 0) ReadStdin();
    if (p[0].revents != 0) ReadSocket();
  }
}

void Session::ReadSocket() {
  auto n = ReadSome(sock_.get(), g_socket_buf, sizeof g_socket_buf);
  if (!n) Lost(n.error().message());
  if (*n == 0) Lost(send_error_);
  decoder_.Feed(std::string_view(g_socket_buf, *n));
  for (;;) {
    auto m = decoder_.Next();
    if (!m) Lost(m.error().message());
    if (!m->has_value()) return;
    Handle(**m);
  }
}

void Session::Handle(wire::Message& m) {
  if (auto* out = std::get_if<wire::Output>(&m)) return WriteOutput(*out);
  if (auto* exit = std::get_if<wire::Exit>(&m)) Finish(*exit);
  if (std::get_if<wire::Stopped>(&m) != nullptr) return StopWithRemote();
  Lost(std::string("unexpected ") + wire::TypeName(wire::TypeOf(m)) + " frame from the broker");
}

void Session::WriteOutput(const wire::Output& o) {
  // Only the shim's own terminals get Output; the broker writes passed fds.
  if (o.fd > 2 || !terminal_[o.fd] || output_failed_[o.fd]) return;
  int fd = static_cast<int>(o.fd);
  std::string_view rest = o.bytes;
  while (!rest.empty()) {
    ssize_t w = ::write(fd, rest.data(), rest.size());
    if (w >= 0) {
      rest.remove_prefix(static_cast<size_t>(w));
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      pollfd p{fd, POLLOUT, 0};  // someone made our terminal non-blocking
      ::poll(&p, 1, -1);
    } else if (errno != EINTR) {
      output_failed_[fd] = true;  // the terminal went away; keep running
      return;
    }
  }
}

void Session::ReadStdin() {
  if (!reading_stdin_) return;
  ssize_t n = ::read(keyboard_fd_, g_stdin_buf, sizeof g_stdin_buf);
  if (n > 0) return Send(wire::Input{std::string(g_stdin_buf, static_cast<size_t>(n))});
  if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return;
  // End of file, or EIO from a terminal that hung up.
  reading_stdin_ = false;
  stdin_eof_ = true;
  Send(wire::InputEof{});
}

void Session::ReadSignals() {
  unsigned char buf[64];
  for (;;) {
    ssize_t n = ::read(signal_read_.get(), buf, sizeof buf);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return;  // EAGAIN: drained
    }
    for (ssize_t i = 0; i < n; ++i) Forward(buf[i]);
  }
}

void Session::Forward(int signo) {
  // The remote pty raises SIGWINCH itself when it learns the new size.
  if (signo == SIGWINCH && fds_.first_terminal >= 0) return SendResize();
  Send(wire::Signal{SignalName(signo)});
  // A command on a remote terminal is a job there: it stops (or, like a
  // local program catching TSTP, decides not to), and its Stopped frame
  // stops the shim. Without a terminal the shim stops at once.
  if (signo == SIGTSTP && fds_.first_terminal < 0) {
    // Stop as a local command would; the remote process group has been
    // told to stop as well. (No terminal: nothing to restore or resize.)
    ::raise(SIGSTOP);
  } else if (signo == SIGCONT) {
    ResumeTerminal();
  }
}

// The remote command stopped as a job (Ctrl-Z typed into its terminal):
// stop the way a local job would, so the shell shows it stopped, with the
// terminal in the shell's mode; when continued, continue the command too.
// In an orphaned process group the kernel discards SIGTSTP and the shim
// carries on at once, so does the command.
void Session::StopWithRemote() {
  raw_.Restore();
  if (!tstp_ignored_) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    struct sigaction ours {};
    ::sigaction(SIGTSTP, &dfl, &ours);
    ::raise(SIGTSTP);
    ::sigaction(SIGTSTP, &ours, nullptr);
  }
  ResumeTerminal();
  Send(wire::Signal{"CONT"});
  if (fds_.first_terminal >= 0) SendResize();
}

void Session::ResumeTerminal() {
  if (keyboard_fd_ < 0) return;
  if (MayUseTerminal(keyboard_fd_)) {
    if (!raw_.active()) raw_.Enter(keyboard_fd_);
    reading_stdin_ = !stdin_eof_;
  } else {
    reading_stdin_ = false;  // continued in the background
  }
}

void Session::SendResize() {
  wire::Resize r;
  if (GetWindowSize(fds_.first_terminal, &r.rows, &r.cols)) Send(r);
}

void Session::Send(const wire::Message& m) {
  if (!send_error_.empty()) return;  // the socket's read side will tell why
  frame_.clear();
  wire::EncodeTo(m, &frame_);
  if (auto s = SendWithFds(sock_.get(), frame_, {}); !s) SendFailed(s.error());
}

void Session::SendFailed(const Error& e) {
  // A broker that went away may still have left its Exit for us to read:
  // the end of the stream decides. Any other failure would leave both
  // sides waiting for each other.
  if (e.sys_errno() != EPIPE && e.sys_errno() != ECONNRESET) Lost(e.message());
  send_error_ = e.message();
}

void Session::Finish(const wire::Exit& e) {
  raw_.Restore();
  if (!e.message.empty()) static_cast<void>(WriteAll(2, e.message + "\n"));
  if (e.signal.has_value()) {
    if (auto signo = SignalFromName(*e.signal)) {
      // Die the way the remote command died, so the parent shell sees it;
      // without a local core file, which would only hold the shim.
      rlimit no_core{0, 0};
      ::setrlimit(RLIMIT_CORE, &no_core);
      ::signal(*signo, SIG_DFL);
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, *signo);
      ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
      ::raise(*signo);
      ::_exit(128 + *signo);  // a signal whose default is to be ignored
    }
  }
  ::_exit(static_cast<int>(e.code & 0xff));
}

void Session::Fail(const std::string& line) {
  raw_.Restore();
  static_cast<void>(WriteAll(2, line + "\n"));
  ::_exit(kExitSessionError);
}

void Session::Lost(const std::string& reason) {
  Fail("mproxy: " + inv_.name + ": lost the mproxy session" +
       (reason.empty() ? std::string() : ": " + reason));
}

}  // namespace

void Run(Invocation inv) {
  Session session(std::move(inv));
  session.Run();
}

}  // namespace mproxy::shim
