// Signals and the shim: Ctrl-C (SIGINT to the shim's process group) ends the
// remote command and bash sees an interrupted child; a signal to the shim
// alone is forwarded by name; a SIGKILLed shim takes its remote command with
// it and the session carries on.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <thread>

#include "tests/e2e/e2e_util.h"
#include "tests/session/session_fixture.h"

namespace mproxy::session_test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::seconds;

// A remote `sleep ARG` started by `script` (which must run it in the
// foreground): waits until both the remote sleep and its local shim exist.
struct RunningSleep {
  std::unique_ptr<Child> child;
  std::string pattern;  // matches the remote command line
  pid_t shim = -1;
};

RunningSleep StartSleep(const SessionFixture& s, const std::string& arg,
                        const std::string& script) {
  RunningSleep r;
  r.pattern = "^sleep " + arg + "$";
  r.child = s.SpawnBash(script);
  REQUIRE(s.WaitForRemote(r.pattern, seconds(60)));
  r.shim = WaitForShim({"sleep", arg}, seconds(10));
  REQUIRE(r.shim > 0);
  return r;
}

// What Ctrl-C does in a terminal: SIGINT to the whole (foreground) process
// group, here the shim's.
void InterruptGroupOf(pid_t pid) {
  const pid_t group = getpgid(pid);
  REQUIRE(group > 0);
  REQUIRE(group != getpgrp());  // never the test's own group
  REQUIRE(kill(-group, SIGINT) == 0);
}

void CtrlC(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  {
    // As in a terminal: the whole foreground process group gets SIGINT.
    const std::string arg = e2e::UniqueSleep(1000);
    auto sleep = StartSleep(s, arg, "sleep " + arg + "; echo \"after $?\"");
    const auto t0 = Clock::now();
    InterruptGroupOf(sleep.shim);
    auto r = sleep.child->Communicate("", seconds(60));
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    INFO("took " << took.count() << " ms");
    CHECK(took < seconds(5));
    // bash was interrupted too and, its child having died of SIGINT (not
    // merely exited 130), it ends itself the same way: nothing is echoed.
    CHECK(r.Status() == "exit 130");
    CHECK(r.out == "");
    CHECK(r.err == "");
    CHECK(s.WaitForNoRemote(sleep.pattern, seconds(10)));
  }
  {
    // With a trap bash survives, and $? says the child died of SIGINT.
    const std::string arg = e2e::UniqueSleep(1000);
    auto sleep =
        StartSleep(s, arg, "trap 'echo trapped' INT; sleep " + arg + "; echo \"after $?\"");
    InterruptGroupOf(sleep.shim);
    auto r = sleep.child->Communicate("", seconds(60));
    CHECK(r.Status() == "exit 0");
    CHECK(r.out == "trapped\nafter 130\n");
    CHECK(r.err == "");
    CHECK(s.WaitForNoRemote(sleep.pattern, seconds(10)));
  }
}
SESSION_TEST_CASE("Ctrl-C (SIGINT to the process group) ends a remote sleep at once", CtrlC)

void SignalToShimForwarded(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  const std::string arg = e2e::UniqueSleep(1000);
  auto sleep = StartSleep(s, arg, "sleep " + arg + "; echo \"after $?\"");
  REQUIRE(kill(sleep.shim, SIGTERM) == 0);
  auto r = sleep.child->Communicate("", seconds(60));
  CHECK(r.Status() == "exit 0");
  CHECK(r.out == "after 143\n");
  INFO("stderr:\n" << Quote(r.err));
  CHECK(e2e::CountOf(r.err, "Terminated") == 1);
  CHECK(e2e::CountOf(r.err, "\n") == 1);
  CHECK(s.WaitForNoRemote(sleep.pattern, seconds(10)));
}
SESSION_TEST_CASE("SIGTERM to a shim reaches the remote command, which dies of it",
                  SignalToShimForwarded)

void SigkillShim(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  const std::string arg = e2e::UniqueSleep(777);
  auto sleep = StartSleep(s, arg, "sleep " + arg + "; echo \"after $?\"; cat \"$M\"");
  REQUIRE(kill(sleep.shim, SIGKILL) == 0);
  // The broker notices the shim's socket closing and kills the remote group.
  CHECK(s.WaitForNoRemote(sleep.pattern, seconds(5)));
  auto r = sleep.child->Communicate("", seconds(60));
  CHECK(r.Status() == "exit 0");
  // The session is still usable afterwards.
  CHECK(r.out == "after 137\n" + s.MarkerText());
  INFO("stderr:\n" << Quote(r.err));
  CHECK(e2e::CountOf(r.err, "Killed") == 1);
  CHECK(e2e::CountOf(r.err, "\n") == 1);
  CHECK(e2e::FindProcesses({"sleep", arg}).empty());
}
SESSION_TEST_CASE("SIGKILL of a shim kills its remote command within seconds", SigkillShim)

void TermToMproxy(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  // The program traps TERM; /bin/sleep (an absolute path) stays local.
  const std::string ready = s.scratch() + "/ready-" + e2e::UniqueSleep(1);
  const std::string script = "trap 'echo caught TERM; exit 7' TERM; : >" + ready +
                             "; while :; do /bin/sleep 0.05; done";
  auto child = s.SpawnBash(script);
  const std::vector<std::string> mproxy = s.MproxyCommand({"bash", "-c", script});
  const auto deadline = Clock::now() + seconds(60);
  std::vector<pid_t> pids;
  while ((pids = e2e::FindProcesses(mproxy)).empty() || access(ready.c_str(), F_OK) != 0) {
    REQUIRE(Clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(pids.size() == 1);
  REQUIRE(kill(pids[0], SIGTERM) == 0);
  auto r = child->Communicate("", seconds(60));
  INFO("stderr:\n" << Quote(r.err));
  // The program handled the signal and mproxy exits with its status, where
  // bwrap dying of it would have killed the program (exit 143, no output).
  CHECK(r.out == "caught TERM\n");
  CHECK(r.Status() == "exit 7");
}
SESSION_TEST_CASE("SIGTERM to mproxy reaches the program, which ends on its own terms",
                  TermToMproxy)

}  // namespace
}  // namespace mproxy::session_test
