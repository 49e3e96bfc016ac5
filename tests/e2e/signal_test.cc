// Signals and `mproxy exec`: an interrupt or TERM sent to mproxy ends the
// remote command and is reported as 128+n; a killed mproxy leaves nothing
// running remotely.
#include <catch2/catch.hpp>
#include <csignal>
#include <thread>

#include "tests/e2e/child.h"
#include "tests/e2e/e2e_util.h"
#include "tests/support/sshd_fixture.h"

namespace mproxy::e2e {
namespace {

using std::chrono::seconds;
using testing::SshdFixture;

// Starts `mproxy exec HOST -- sleep <unique>` with stdin from /dev/null and
// returns once the remote sleep runs.
std::unique_ptr<Child> StartRemoteSleep(const SshdFixture& f,
                                        const std::vector<std::string>& sleeper) {
  Child::Options o;
  o.argv = ExecArgv(f, sleeper);
  o.stdin_kind = Child::StdinKind::kFile;
  auto c = Child::Spawn(o);
  INFO("sshd log:\n" << f.LogTail());
  REQUIRE(WaitForProcess(sleeper, seconds(30)));
  return c;
}

TEST_CASE("SIGINT to mproxy exec ends the remote sleep and exits 130", "[e2e]") {
  auto f = SshdFixture::StartOrSkip();
  const std::vector<std::string> sleeper = {"sleep", UniqueSleep(1234)};
  auto c = StartRemoteSleep(*f, sleeper);

  c->Signal(SIGINT);
  // The sleep would last 20 minutes; the limit only guards against a hang.
  auto r = c->Communicate("", seconds(60));
  // "exit 130", not "killed by signal 2": mproxy caught the interrupt,
  // forwarded it, and reported how the remote command ended.
  CHECK(r.Status() == "exit 130");
  CHECK(r.out == "");
  CHECK(r.err == "");
  // The Exit is only sent after the agent reaped the command.
  CHECK(FindProcesses(sleeper).empty());
}

TEST_CASE("SIGTERM and SIGHUP to mproxy exec are forwarded and reported as 143 and 129", "[e2e]") {
  auto f = SshdFixture::StartOrSkip();
  for (auto [signo, status] : {std::pair{SIGTERM, "exit 143"}, std::pair{SIGHUP, "exit 129"}}) {
    const std::vector<std::string> sleeper = {"sleep", UniqueSleep(1234)};
    auto c = StartRemoteSleep(*f, sleeper);
    c->Signal(signo);
    auto r = c->Communicate("", seconds(60));
    INFO("signal " << signo);
    CHECK(r.Status() == status);
    CHECK(r.err == "");
    CHECK(FindProcesses(sleeper).empty());
  }
}

TEST_CASE("a SIGKILLed mproxy exec leaves no remote process behind", "[e2e]") {
  auto f = SshdFixture::StartOrSkip();
  const std::vector<std::string> sleeper = {"sleep", UniqueSleep(2345)};
  auto c = StartRemoteSleep(*f, sleeper);

  c->Signal(SIGKILL);
  auto r = c->Communicate("", seconds(30));
  REQUIRE(r.Status() == "killed by signal 9");
  // sshd sees the connection drop, the agent sees EOF and kills what it
  // started (SIGHUP, then SIGKILL after a grace period).
  INFO("sshd log:\n" << f->LogTail());
  CHECK(WaitForNoProcess(sleeper, seconds(20)));
}

TEST_CASE("three SIGINTs give up on a remote that ignores them, and it is still killed", "[e2e]") {
  auto f = SshdFixture::StartOrSkip();
  const std::string arg = UniqueSleep(3456);
  const std::vector<std::string> sleeper = {"sleep", arg};
  Child::Options o;
  o.argv = ExecArgv(*f, {"sh", "-c", "trap '' INT; exec sleep " + arg});
  o.stdin_kind = Child::StdinKind::kFile;
  auto c = Child::Spawn(o);
  REQUIRE(WaitForProcess(sleeper, seconds(30)));

  for (int i = 0; i < 3; ++i) {
    c->Signal(SIGINT);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  auto r = c->Communicate("", seconds(60));
  CHECK(r.Status() == "exit 130");
  CHECK(r.err == "mproxy: interrupted; not waiting for " + f->alias() + " any longer\n");
  // Closing the channel makes the agent kill the process group.
  CHECK(WaitForNoProcess(sleeper, seconds(20)));
}

TEST_CASE("a closed local stdout ends the remote writer with SIGPIPE, as in a local pipeline",
          "[e2e]") {
  auto f = SshdFixture::StartOrSkip();
  // mproxy's stdout is a pipe whose reader (head) leaves after 6 bytes.
  std::vector<std::string> argv = {"/bin/bash", "-c",
                                   "\"$@\" | head -c 6; echo \" ${PIPESTATUS[0]}\"", "bash"};
  for (const auto& a : ExecArgv(*f, {"seq", "1", "1000000000"})) argv.push_back(a);
  auto r = Run(argv, seconds(60));
  CHECK(r.Status() == "exit 0");
  CHECK(r.out == "1\n2\n3\n 141\n");
  CHECK(r.err == "");
}

TEST_CASE("mproxy exec exits 255 when the host hangs, and nothing is left once it wakes",
          "[e2e][slow]") {
  auto f = SshdFixture::StartOrSkip();
  if (f->marker_path().empty()) testing::Skip("pausing sshd needs the fixture's namespace");
  const std::vector<std::string> sleeper = {"sleep", UniqueSleep(4567)};
  auto c = StartRemoteSleep(*f, sleeper);

  REQUIRE(f->Pause().ok());
  // Keepalives (every 5 s, 3 unanswered) notice it; the limit is anti-hang.
  auto r = c->Communicate("", seconds(90));
  (void)f->Resume();
  CHECK(r.Status() == "exit 255");
  CHECK(r.err.rfind("mproxy: ", 0) == 0);
  CHECK(CountOf(r.err, "\n") == 1);
  CHECK(r.err.find("keepalive") != std::string::npos);
  INFO("sshd log:\n" << f->LogTail());
  CHECK(WaitForNoProcess(sleeper, seconds(20)));
}

}  // namespace
}  // namespace mproxy::e2e
