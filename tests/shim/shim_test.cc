// The real mproxy-shim against a fake broker, with pipes and files as its
// fds: what it asks the broker for, and the status, bytes and lines a user
// sees.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>

#include "common/io.h"
#include "tests/shim/shim_harness.h"

namespace mproxy::testing {
namespace {

namespace wire = proto::shim;
using Mode = wire::Fd::Mode;

std::pair<UniqueFd, UniqueFd> Pipe() {
  auto p = MakePipe();
  REQUIRE(p.ok());
  return std::move(*p);
}

UniqueFd Open(const std::string& path, int flags) {
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC, 0600));
  REQUIRE(fd.valid());
  return fd;
}

std::string FileText(const std::string& path) {
  UniqueFd fd = Open(path, O_RDONLY);
  auto text = ReadToEof(fd.get());
  REQUIRE(text.ok());
  return *text;
}

// A session directory with a broker, a `grep` stub, and pipes for the
// shim's stdin, stdout and stderr.
struct Session {
  TempDir dir;
  FakeBroker broker{dir.path()};
  std::string grep = LinkCommand(dir.path(), "grep");
  std::pair<UniqueFd, UniqueFd> in = Pipe();
  std::pair<UniqueFd, UniqueFd> out = Pipe();
  std::pair<UniqueFd, UniqueFd> err = Pipe();

  ShimLaunch Launch(std::vector<std::string> argv = {"grep", "x"}) {
    ShimLaunch l;
    l.program = grep;
    l.argv = std::move(argv);
    l.env = {"MPROXY_SOCK=" + broker.socket_path()};
    l.fds = {{0, in.first.get()}, {1, out.second.get()}, {2, err.second.get()}};
    return l;
  }
  // Starts the shim and drops the test's copies of the child's pipe ends,
  // so EOF on out/err means the shim and the broker let go of them.
  pid_t Start(const ShimLaunch& l) {
    pid_t pid = StartShim(l);
    in.first.Reset();
    out.second.Reset();
    err.second.Reset();
    return pid;
  }
};

int ExitCode(int status) {
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

TEST_CASE("the request carries exact argv, environment, cwd, command path and fds", "[shim]") {
  Session s;
  std::string work = s.dir.path() + "/work dir";
  REQUIRE(::mkdir(work.c_str(), 0700) == 0);
  ShimLaunch l = s.Launch({"grep", "-n", "two words", "", std::string("caf\xc3\xa9"), "--"});
  l.env = {"MPROXY_SOCK=" + s.broker.socket_path(), "LANG=C.UTF-8", "EMPTY=", "TAB=a\tb",
           "PATH=/usr/bin:/bin"};
  l.cwd = work;
  pid_t pid = s.Start(l);
  ShimConnection c = s.broker.Accept();

  CHECK(c.request.version == wire::kVersion);
  CHECK(c.request.exe == s.grep);
  CHECK(c.request.argv == l.argv);
  CHECK(c.request.env == l.env);
  CHECK(c.request.cwd == std::filesystem::canonical(work).string());
  CHECK(c.request.fds == std::vector<wire::Fd>{{0, Mode::kPassed, true},
                                               {1, Mode::kPassed, false},
                                               {2, Mode::kPassed, false}});
  CHECK(c.request.term.empty());
  CHECK(c.request.rows == 0);
  CHECK(c.request.cols == 0);
  CHECK(c.fds.size() == 3);
  c.Send(wire::Exit{});
  CHECK(ExitCode(WaitShim(pid)) == 0);
}

TEST_CASE("passed fds carry the shim's stdin, stdout and stderr", "[shim]") {
  Session s;
  pid_t pid = s.Start(s.Launch());
  ShimConnection c = s.broker.Accept();
  REQUIRE(WriteAll(s.in.second.get(), "input line\n").ok());
  s.in.second.Reset();
  CHECK(ReadAll(c.Passed(0)) == "input line\n");
  REQUIRE(WriteAll(c.Passed(1), "to stdout\n").ok());
  REQUIRE(WriteAll(c.Passed(2), "to stderr\n").ok());
  c.fds.clear();
  c.Send(wire::Exit{});
  CHECK(ExitCode(WaitShim(pid)) == 0);
  CHECK(ReadAll(s.out.first.get()) == "to stdout\n");
  CHECK(ReadAll(s.err.first.get()) == "to stderr\n");
}

TEST_CASE("an fd 3 opened for writing and a read-only fd 4 are passed each way", "[shim]") {
  Session s;
  std::string three = s.dir.path() + "/three";
  std::string four = s.dir.path() + "/four";
  REQUIRE(WriteAll(Open(four, O_WRONLY | O_CREAT).get(), "four\n").ok());
  UniqueFd w = Open(three, O_WRONLY | O_CREAT | O_TRUNC);
  UniqueFd r = Open(four, O_RDONLY);
  ShimLaunch l = s.Launch();
  l.fds[3] = w.get();
  l.fds[4] = r.get();
  pid_t pid = s.Start(l);
  w.Reset();
  r.Reset();
  ShimConnection c = s.broker.Accept();
  CHECK(c.request.fds == std::vector<wire::Fd>{{0, Mode::kPassed, true},
                                               {1, Mode::kPassed, false},
                                               {2, Mode::kPassed, false},
                                               {3, Mode::kPassed, false},
                                               {4, Mode::kPassed, true}});
  REQUIRE(c.fds.size() == 5);
  REQUIRE(WriteAll(c.Passed(3), "three\n").ok());
  CHECK(ReadAll(c.Passed(4)) == "four\n");
  c.Send(wire::Exit{});
  CHECK(ExitCode(WaitShim(pid)) == 0);
  CHECK(FileText(three) == "three\n");
}

TEST_CASE("closed fds are not listed, and directories and event fds are not passed", "[shim]") {
  Session s;
  UniqueFd dir = Open(s.dir.path(), O_RDONLY | O_DIRECTORY);
  UniqueFd ev(::eventfd(0, EFD_CLOEXEC));
  REQUIRE(ev.valid());
  UniqueFd file = Open(s.dir.path() + "/five", O_RDWR | O_CREAT);
  ShimLaunch l = s.Launch();
  l.fds.erase(1);
  l.fds[3] = dir.get();
  l.fds[4] = ev.get();
  l.fds[5] = file.get();
  pid_t pid = s.Start(l);
  ShimConnection c = s.broker.Accept();
  CHECK(c.request.fds == std::vector<wire::Fd>{{0, Mode::kPassed, true},
                                               {2, Mode::kPassed, false},
                                               {5, Mode::kPassed, false}});
  CHECK(c.fds.size() == 3);
  c.Send(wire::Exit{});
  CHECK(ExitCode(WaitShim(pid)) == 0);
}

TEST_CASE("with 0, 1 and 2 closed the exit message goes nowhere, not into the socket", "[shim]") {
  Session s;
  ShimLaunch l = s.Launch();
  l.fds.clear();
  pid_t pid = s.Start(l);
  ShimConnection c = s.broker.Accept();
  CHECK(c.request.fds.empty());
  c.Send(wire::Exit{7, std::nullopt, false, "mproxy: grep: something to say"});
  CHECK(ExitCode(WaitShim(pid)) == 7);
  CHECK_FALSE(c.Next().has_value());  // end of stream, no stray bytes
  CHECK(c.decoder.buffered() == 0);
}

TEST_CASE("the shim exits with the remote exit code", "[shim]") {
  Session s;
  pid_t pid = s.Start(s.Launch());
  ShimConnection c = s.broker.Accept();
  c.Send(wire::Exit{42, std::nullopt, false, ""});
  CHECK(ExitCode(WaitShim(pid)) == 42);
  c.fds.clear();
  CHECK(ReadAll(s.err.first.get()).empty());
}

TEST_CASE("the shim dies of the signal that killed the remote command", "[shim]") {
  for (auto [name, signo] :
       {std::pair<const char*, int>{"TERM", SIGTERM}, {"KILL", SIGKILL}, {"SEGV", SIGSEGV}}) {
    Session s;
    pid_t pid = s.Start(s.Launch());
    ShimConnection c = s.broker.Accept();
    c.Send(wire::Exit{128u + static_cast<uint32_t>(signo), std::string(name), false, ""});
    int status = WaitShim(pid);
    INFO(name);
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == signo);
    CHECK_FALSE(WCOREDUMP(status));  // no local core file of the shim
  }
}

TEST_CASE("a remote signal whose default is to be ignored gives 128+n", "[shim]") {
  Session s;
  pid_t pid = s.Start(s.Launch());
  ShimConnection c = s.broker.Accept();
  c.Send(wire::Exit{128 + SIGWINCH, std::string("WINCH"), false, ""});
  CHECK(ExitCode(WaitShim(pid)) == 128 + SIGWINCH);
}

TEST_CASE("the exit message is printed on stderr as one line", "[shim]") {
  Session s;
  pid_t pid = s.Start(s.Launch());
  ShimConnection c = s.broker.Accept();
  c.Send(wire::Exit{127, std::nullopt, false, "mproxy: grep: command not found on build-box"});
  CHECK(ExitCode(WaitShim(pid)) == 127);
  c.fds.clear();
  CHECK(ReadAll(s.err.first.get()) == "mproxy: grep: command not found on build-box\n");
  CHECK(ReadAll(s.out.first.get()).empty());
}

// Lets execve carry up to a quarter of `bytes` of arguments (Linux: a quarter
// of the stack limit, and never more than 6 MiB, which is why the shim's
// frame limit of 8 MiB cannot be reached through exec), for this process and
// its children, until destroyed.
class StackLimit {
 public:
  explicit StackLimit(rlim_t bytes) {
    REQUIRE(::getrlimit(RLIMIT_STACK, &saved_) == 0);
    rlimit raised = saved_;
    if (raised.rlim_cur != RLIM_INFINITY && raised.rlim_cur < bytes) raised.rlim_cur = bytes;
    if (raised.rlim_max != RLIM_INFINITY && raised.rlim_max < raised.rlim_cur) {
      raised.rlim_cur = raised.rlim_max;
    }
    REQUIRE(::setrlimit(RLIMIT_STACK, &raised) == 0);
  }
  ~StackLimit() { ::setrlimit(RLIMIT_STACK, &saved_); }
  StackLimit(const StackLimit&) = delete;
  StackLimit& operator=(const StackLimit&) = delete;

 private:
  rlimit saved_{};
};

// `n` environment entries of about 100 KiB each (below the kernel's 128 KiB
// per string).
std::vector<std::string> BigEnv(size_t n) {
  std::vector<std::string> env;
  for (size_t i = 0; i < n; ++i) {
    env.push_back("BIG" + std::to_string(i) + "=" +
                  std::string(100000, static_cast<char>('a' + i % 26)));
  }
  return env;
}

TEST_CASE("a request near the kernel's limit for exec arrives whole", "[shim]") {
  StackLimit limit(64u << 20);
  Session s;
  std::vector<std::string> args = {"grep"};
  for (int i = 0; i < 5; ++i) args.push_back(std::string(100000, static_cast<char>('0' + i)));
  ShimLaunch l = s.Launch(args);
  l.env = BigEnv(55);  // 5.5 MB, with argv 6 MB: near all that execve takes
  l.env.push_back("MPROXY_SOCK=" + s.broker.socket_path());
  pid_t pid = s.Start(l);
  ShimConnection c = s.broker.Accept();
  CHECK(c.request.argv == l.argv);
  CHECK(c.request.env == l.env);
  c.Send(wire::Exit{3, std::nullopt, false, ""});
  CHECK(ExitCode(WaitShim(pid)) == 3);
}

TEST_CASE("outside a session the shim says so and exits 255", "[shim]") {
  Session s;
  ShimLaunch l = s.Launch();
  l.env = {"HOME=/nowhere"};
  pid_t pid = s.Start(l);
  CHECK(ExitCode(WaitShim(pid)) == 255);
  CHECK(ReadAll(s.err.first.get()) ==
        "mproxy: grep: not inside an mproxy session (MPROXY_SOCK is not set)\n");
}

TEST_CASE("a socket nobody listens on gives 255 and the path", "[shim]") {
  Session s;
  ShimLaunch l = s.Launch();
  std::string missing = s.dir.path() + "/gone.sock";
  l.env = {"MPROXY_SOCK=" + missing};
  pid_t pid = s.Start(l);
  CHECK(ExitCode(WaitShim(pid)) == 255);
  CHECK(ReadAll(s.err.first.get()) == "mproxy: grep: cannot reach the mproxy session at " +
                                          missing + ": No such file or directory\n");
}

TEST_CASE("a broker that goes away before the exit gives 255 and one line", "[shim]") {
  Session s;
  pid_t pid = s.Start(s.Launch());
  { ShimConnection c = s.broker.Accept(); }
  CHECK(ExitCode(WaitShim(pid)) == 255);
  CHECK(ReadAll(s.err.first.get()) == "mproxy: grep: lost the mproxy session\n");
}

TEST_CASE("a frame the shim cannot decode ends it with 255 and the reason", "[shim]") {
  Session s;
  pid_t pid = s.Start(s.Launch());
  ShimConnection c = s.broker.Accept();
  REQUIRE(WriteAll(c.sock.get(), std::string("\0\0\0\1\x63", 5)).ok());
  CHECK(ExitCode(WaitShim(pid)) == 255);
  c.fds.clear();
  CHECK(ReadAll(s.err.first.get()) ==
        "mproxy: grep: lost the mproxy session: shim frame: unknown message type 99\n");
}

TEST_CASE("signals sent to the shim reach the broker by name while it keeps waiting", "[shim]") {
  Session s;
  pid_t pid = s.Start(s.Launch());
  ShimConnection c = s.broker.Accept();
  for (auto [signo, name] : {std::pair<int, const char*>{SIGINT, "INT"},
                             {SIGUSR1, "USR1"},
                             {SIGTERM, "TERM"},
                             {SIGHUP, "HUP"},
                             {SIGQUIT, "QUIT"},
                             {SIGUSR2, "USR2"},
                             {SIGWINCH, "WINCH"}}) {
    REQUIRE(::kill(pid, signo) == 0);
    auto m = c.Next();
    REQUIRE(m.has_value());
    CHECK(*m == wire::Message(wire::Signal{name}));
    int status = 0;
    CHECK(::waitpid(pid, &status, WNOHANG) == 0);
  }
  c.Send(wire::Exit{3, std::nullopt, false, ""});
  CHECK(ExitCode(WaitShim(pid)) == 3);
}

TEST_CASE("a signal ignored when the shim started stays ignored and is not forwarded", "[shim]") {
  Session s;
  ShimLaunch l = s.Launch();
  l.ignored_signals = {SIGHUP};
  pid_t pid = s.Start(l);
  ShimConnection c = s.broker.Accept();
  REQUIRE(::kill(pid, SIGHUP) == 0);
  REQUIRE(::kill(pid, SIGUSR1) == 0);
  auto m = c.Next();
  REQUIRE(m.has_value());
  CHECK(*m == wire::Message(wire::Signal{"USR1"}));
  c.Send(wire::Exit{});
  CHECK(ExitCode(WaitShim(pid)) == 0);
}

TEST_CASE("SIGTSTP is forwarded and stops the shim, then SIGCONT is forwarded", "[shim]") {
  Session s;
  pid_t pid = s.Start(s.Launch());
  ShimConnection c = s.broker.Accept();
  REQUIRE(::kill(pid, SIGTSTP) == 0);
  auto tstp = c.Next();
  REQUIRE(tstp.has_value());
  CHECK(*tstp == wire::Message(wire::Signal{"TSTP"}));
  int status = WaitShim(pid, /*stopped=*/true);
  REQUIRE(WIFSTOPPED(status));
  REQUIRE(::kill(pid, SIGCONT) == 0);
  auto cont = c.Next();
  REQUIRE(cont.has_value());
  CHECK(*cont == wire::Message(wire::Signal{"CONT"}));
  c.Send(wire::Exit{});
  CHECK(ExitCode(WaitShim(pid)) == 0);
}

TEST_CASE("under its own name the shim explains itself", "[shim]") {
  Session s;
  ShimLaunch l = s.Launch({"mproxy-shim", "--version"});
  l.program = ShimBinary();
  pid_t pid = s.Start(l);
  CHECK(ExitCode(WaitShim(pid)) == 0);
  CHECK(ReadAll(s.out.first.get()) == std::string("mproxy-shim ") + MPROXY_TEST_VERSION + "\n");

  Session h;
  l = h.Launch({"mproxy-shim", "--help"});
  l.program = ShimBinary();
  pid = h.Start(l);
  CHECK(ExitCode(WaitShim(pid)) == 0);
  CHECK(ReadAll(h.out.first.get()).rfind("mproxy-shim: the stand-in for remote commands", 0) == 0);

  Session u;
  l = u.Launch({"mproxy-shim", "grep", "x"});
  l.program = ShimBinary();
  pid = u.Start(l);
  CHECK(ExitCode(WaitShim(pid)) == 2);
  std::string err = ReadAll(u.err.first.get());
  CHECK(err.rfind("mproxy-shim: usage: ", 0) == 0);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
}

}  // namespace
}  // namespace mproxy::testing
