// The real mproxy-shim on a pty (openpty) as its controlling terminal: fds
// kept as terminals, raw mode while the command runs and the old settings
// afterwards, Output on the screen, keystrokes as Input, resizes.
#include <fcntl.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstring>

#include "common/io.h"
#include "common/unix_socket.h"
#include "tests/shim/shim_harness.h"
#include "tests/support/sshd_fixture.h"

namespace mproxy::testing {
namespace {

namespace wire = proto::shim;
using Mode = wire::Fd::Mode;

bool SameSettings(const termios& a, const termios& b) {
  return a.c_iflag == b.c_iflag && a.c_oflag == b.c_oflag && a.c_cflag == b.c_cflag &&
         a.c_lflag == b.c_lflag && std::memcmp(a.c_cc, b.c_cc, sizeof a.c_cc) == 0;
}

bool IsRaw(const termios& t) {
  return (t.c_lflag & (ICANON | ECHO | ISIG)) == 0 && (t.c_oflag & OPOST) == 0 &&
         (t.c_iflag & (ICRNL | IXON)) == 0;
}

termios Settings(int fd) {
  termios t{};
  REQUIRE(::tcgetattr(fd, &t) == 0);
  return t;
}

// A shim running as `grep` with a fresh pty as its controlling terminal on
// 0, 1 and 2, sized 30x100, and the broker's view of it.
struct TerminalSession {
  TempDir dir;
  FakeBroker broker{dir.path()};
  UniqueFd master;
  UniqueFd slave;
  termios before{};
  pid_t pid = -1;       // what the test started: the shim, or its job shell
  pid_t shim_pid = -1;  // the shim itself (the broker socket's peer)
  ShimConnection conn;

  // `stdin_fd`/`stdout_fd`: something else than the pty for 0 or 1 (-1: the
  // pty).
  explicit TerminalSession(int stdin_fd = -1, int stdout_fd = -1, bool job_shell = false) {
    int m = -1;
    int s = -1;
    winsize ws{};
    ws.ws_row = 30;
    ws.ws_col = 100;
    if (::openpty(&m, &s, nullptr, nullptr, &ws) != 0) {
      Skip(std::string("openpty: ") + std::strerror(errno));
    }
    master.Reset(m);
    slave.Reset(s);
    ::fcntl(m, F_SETFD, FD_CLOEXEC);
    ::fcntl(s, F_SETFD, FD_CLOEXEC);
    before = Settings(s);
    ShimLaunch l;
    l.program = LinkCommand(dir.path(), "grep");
    l.argv = {"grep", "-i", "x"};
    l.env = {"MPROXY_SOCK=" + broker.socket_path(), "TERM=xterm-test"};
    l.fds = {{0, stdin_fd >= 0 ? stdin_fd : s}, {1, stdout_fd >= 0 ? stdout_fd : s}, {2, s}};
    l.controlling_terminal = true;
    l.job_shell = job_shell;
    pid = StartShim(l);
    conn = broker.Accept();
    auto peer = GetPeerCredentials(conn.sock.get());
    REQUIRE(peer.ok());
    shim_pid = peer->pid;
  }

  // The next message of type T, skipping others; fails after the timeout.
  template <typename T>
  T NextOf() {
    for (;;) {
      auto m = conn.Next();
      REQUIRE(m.has_value());
      if (auto* t = std::get_if<T>(&*m)) return *t;
    }
  }
};

int ExitCode(int status) {
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

TEST_CASE("terminal fds stay with the shim and the request names TERM and the size", "[shim]") {
  TerminalSession t;
  CHECK(t.conn.request.fds == std::vector<wire::Fd>{{0, Mode::kTerminal, true},
                                                    {1, Mode::kTerminal, false},
                                                    {2, Mode::kTerminal, false}});
  CHECK(t.conn.fds.empty());
  CHECK(t.conn.request.term == "xterm-test");
  CHECK(t.conn.request.rows == 30);
  CHECK(t.conn.request.cols == 100);
  // Raw mode is on by the time the request arrives.
  CHECK(IsRaw(Settings(t.slave.get())));
  t.conn.Send(wire::Exit{});
  CHECK(ExitCode(WaitShim(t.pid)) == 0);
  CHECK(SameSettings(Settings(t.slave.get()), t.before));
}

TEST_CASE("Output appears on the terminal and keystrokes arrive as Input", "[shim]") {
  TerminalSession t;
  t.conn.Send(wire::Output{1, "hello\nworld"});
  t.conn.Send(wire::Output{2, "|err"});
  // Raw mode: no local \n -> \r\n, the remote pty already did that.
  CHECK(ReadUntil(t.master.get(), "|err") == "hello\nworld|err");

  // ^C and ^Z are bytes for the remote pty, not local signals.
  const std::string typed = "typed\r\x03\x1a";
  REQUIRE(WriteAll(t.master.get(), typed).ok());
  std::string got;
  while (got.size() < typed.size()) got += t.NextOf<wire::Input>().bytes;
  CHECK(got == typed);
  int status = 0;
  CHECK(::waitpid(t.pid, &status, WNOHANG) == 0);

  t.conn.Send(wire::Exit{5, std::nullopt, false, ""});
  CHECK(ExitCode(WaitShim(t.pid)) == 5);
  CHECK(SameSettings(Settings(t.slave.get()), t.before));
}

TEST_CASE("with stdin a pipe and stdout the terminal, keys come from the terminal", "[shim]") {
  // `producer | less`: the pager reads its keys from /dev/tty.
  auto pipe = MakePipe();
  REQUIRE(pipe.ok());
  TerminalSession t(pipe->first.get(), -1);
  REQUIRE(t.conn.request.fds.size() == 3);
  CHECK(t.conn.request.fds[0] == wire::Fd{0, Mode::kPassed, true});
  CHECK(t.conn.request.fds[1] == wire::Fd{1, Mode::kTerminal, false});
  CHECK(IsRaw(Settings(t.slave.get())));
  REQUIRE(WriteAll(t.master.get(), "q").ok());
  CHECK(t.NextOf<wire::Input>().bytes == "q");
  t.conn.Send(wire::Exit{});
  CHECK(ExitCode(WaitShim(t.pid)) == 0);
  CHECK(SameSettings(Settings(t.slave.get()), t.before));
}

TEST_CASE("with stdout a pipe, the terminal's keys are left to the pipe's reader", "[shim]") {
  // `remote-cmd | less`: a local pager reads the keyboard; the shim must
  // neither take its keys nor make the terminal raw under it.
  auto pipe = MakePipe();
  REQUIRE(pipe.ok());
  TerminalSession t(-1, pipe->second.get());
  CHECK(t.conn.request.fds[0] == wire::Fd{0, Mode::kTerminal, true});
  CHECK(t.conn.request.fds[1] == wire::Fd{1, Mode::kPassed, false});
  CHECK(SameSettings(Settings(t.slave.get()), t.before));
  REQUIRE(WriteAll(t.master.get(), "keys\n").ok());
  ::usleep(200 * 1000);
  t.conn.Send(wire::Exit{});
  CHECK(ExitCode(WaitShim(t.pid)) == 0);
  // The line is still there for whoever reads the terminal next.
  int flags = ::fcntl(t.slave.get(), F_GETFL);
  ::fcntl(t.slave.get(), F_SETFL, flags | O_NONBLOCK);
  char buf[16] = {};
  CHECK(::read(t.slave.get(), buf, sizeof buf) == 5);
  CHECK(std::string(buf, 5) == "keys\n");
}

TEST_CASE("a new window size reaches the broker as Resize", "[shim]") {
  TerminalSession t;
  winsize ws{};
  ws.ws_row = 40;
  ws.ws_col = 120;
  // The kernel sends SIGWINCH to the shim (the terminal's foreground group);
  // send one more by hand as well, the way a test harness might.
  REQUIRE(::ioctl(t.master.get(), TIOCSWINSZ, &ws) == 0);
  REQUIRE(::kill(t.pid, SIGWINCH) == 0);
  CHECK(t.NextOf<wire::Resize>() == wire::Resize{40, 120});
  t.conn.Send(wire::Exit{});
  CHECK(ExitCode(WaitShim(t.pid)) == 0);
}

TEST_CASE("the terminal is restored when the shim re-raises the remote signal", "[shim]") {
  TerminalSession t;
  t.conn.Send(wire::Exit{130, std::string("INT"), false, ""});
  int status = WaitShim(t.pid);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGINT);
  CHECK(SameSettings(Settings(t.slave.get()), t.before));
}

TEST_CASE("the terminal is restored when the session is lost, before the line is printed",
          "[shim]") {
  TerminalSession t;
  t.conn.sock.Reset();
  CHECK(ExitCode(WaitShim(t.pid)) == 255);
  CHECK(SameSettings(Settings(t.slave.get()), t.before));
  // Printed in the restored (cooked) mode: the terminal adds the \r.
  CHECK(ReadUntil(t.master.get(), "\n") == "mproxy: grep: lost the mproxy session\r\n");
}

// Ctrl-Z typed into a remote terminal program stops it as a job there; the
// broker passes the agent's Stopped on, and the shim stops like a local job.
// The job shell stops (SIGSTOP) when the shim does, so the test sees it.
void StopsWithTheRemoteCommand(TerminalSession& t) {
  t.conn.Send(wire::Stopped{"TSTP"});
  int status = WaitShim(t.pid, /*stopped=*/true);
  REQUIRE(WIFSTOPPED(status));
  CHECK(SameSettings(Settings(t.slave.get()), t.before));

  REQUIRE(::kill(t.pid, SIGCONT) == 0);
  bool resized = false;
  bool continued = false;
  while (!resized || !continued) {
    auto m = t.conn.Next();
    REQUIRE(m.has_value());
    if (auto* r = std::get_if<wire::Resize>(&*m)) {
      CHECK(*r == wire::Resize{30, 100});
      resized = true;
    } else if (auto* s = std::get_if<wire::Signal>(&*m)) {
      CHECK(s->name == "CONT");
      continued = true;
    }
  }
  CHECK(IsRaw(Settings(t.slave.get())));
}

TEST_CASE("Stopped from the broker stops the shim with the terminal restored until continued",
          "[shim]") {
  TerminalSession t(-1, -1, /*job_shell=*/true);
  StopsWithTheRemoteCommand(t);
  // And a second time, the same way.
  StopsWithTheRemoteCommand(t);
  t.conn.Send(wire::Exit{});
  CHECK(ExitCode(WaitShim(t.pid)) == 0);
  CHECK(SameSettings(Settings(t.slave.get()), t.before));
}

TEST_CASE("SIGTSTP to a shim on a terminal goes to the remote job which decides to stop",
          "[shim]") {
  TerminalSession t(-1, -1, /*job_shell=*/true);
  REQUIRE(::kill(t.shim_pid, SIGTSTP) == 0);
  CHECK(t.NextOf<wire::Signal>() == wire::Signal{"TSTP"});
  // Not stopped yet: it still writes Output (a remote program that catches
  // TSTP may go on running, as a local one would).
  t.conn.Send(wire::Output{1, "still here"});
  CHECK(ReadUntil(t.master.get(), "here") == "still here");
  CHECK(IsRaw(Settings(t.slave.get())));
  // The remote job stopped: now the shim does.
  StopsWithTheRemoteCommand(t);
  t.conn.Send(wire::Exit{});
  CHECK(ExitCode(WaitShim(t.pid)) == 0);
  CHECK(SameSettings(Settings(t.slave.get()), t.before));
}

TEST_CASE("without job control (an orphaned group) Stopped leaves the shim running", "[shim]") {
  TerminalSession t;  // a session leader whose parent is elsewhere: orphaned
  t.conn.Send(wire::Stopped{"TSTP"});
  // The kernel discards SIGTSTP here, so the remote command is continued.
  CHECK(t.NextOf<wire::Signal>() == wire::Signal{"CONT"});
  CHECK(IsRaw(Settings(t.slave.get())));
  t.conn.Send(wire::Exit{});
  CHECK(ExitCode(WaitShim(t.pid)) == 0);
}

TEST_CASE("a terminal that hangs up ends stdin and forwards SIGHUP", "[shim]") {
  TerminalSession t;
  t.master.Reset();
  bool hup = false;
  bool eof = false;
  while (!hup || !eof) {
    auto m = t.conn.Next();
    REQUIRE(m.has_value());
    if (auto* s = std::get_if<wire::Signal>(&*m)) {
      if (s->name == "HUP") hup = true;
    } else if (std::holds_alternative<wire::InputEof>(*m)) {
      eof = true;
    }
  }
  t.conn.Send(wire::Exit{129, std::string("HUP"), false, ""});
  int status = WaitShim(t.pid);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGHUP);
}

}  // namespace
}  // namespace mproxy::testing
