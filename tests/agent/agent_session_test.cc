// End-to-end tests of the real mproxy-agent binary over pipes: exec, streams,
// exit statuses, signals, pty, PATH queries and cleanup at session end.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <thread>

#include "tests/agent/agent_client.h"

namespace mproxy::testing {
namespace {

using proto::FdSpec;

bool ProcessExists(pid_t pid) { return kill(pid, 0) == 0 || errno != ESRCH; }

// Waits until no process has `pid` (the agent reaps its children, so a dead
// child disappears entirely). Generous: only there to avoid hanging.
bool PidGone(pid_t pid, int timeout_ms = 30000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!ProcessExists(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// Like PidGone, but keeps the session running meanwhile.
bool PidGoneWhileRunning(AgentClient& a, pid_t pid) {
  return a.RunUntil([pid] { return !ProcessExists(pid); });
}

void StartAgent(AgentClient& a) {
  auto s = a.Start();
  INFO((s ? std::string() : s.error().message()));
  REQUIRE(s.ok());
}

TEST_CASE("agent: --version prints the version and exits 0", "[agent]") {
  std::string cmd = std::string(MPROXY_AGENT_PATH) + " --version";
  FILE* f = popen(cmd.c_str(), "r");
  REQUIRE(f != nullptr);
  char buf[128] = {};
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  int status = pclose(f);
  CHECK(std::string(buf, n).rfind("mproxy-agent ", 0) == 0);
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("a command's output and exit codes 0 and 42 arrive", "[agent]") {
  AgentClient a;
  StartAgent(a);
  auto& ok = a.Run(MakeExec(1, {"echo", "hello", "world"}));
  REQUIRE(ok.exit);
  CHECK(ok.started);
  CHECK(ok.out[1] == "hello world\n");
  CHECK(ok.exit->code == 0);
  CHECK_FALSE(ok.exit->signal);
  CHECK(ok.eofs.count(1) == 1);
  CHECK(ok.eofs.count(2) == 1);

  auto& e42 = a.Run(MakeExec(2, {"sh", "-c", "exit 42"}));
  REQUIRE(e42.exit);
  CHECK(e42.exit->code == 42);
  CHECK(e42.exit->error.empty());
}

TEST_CASE("with no_started the command runs and exits without a Started", "[agent]") {
  AgentClient a;
  StartAgent(a);
  proto::Exec exec = MakeExec(1, {"sh", "-c", "echo quiet; exit 7"});
  exec.no_started = true;
  auto& log = a.Run(exec);
  REQUIRE(log.exit);
  CHECK_FALSE(log.started);
  CHECK(log.out[1] == "quiet\n");
  CHECK(log.exit->code == 7);
}

TEST_CASE("a child starts with default signals, nothing blocked, in its own group",
          "[agent]") {
  AgentClient a;
  StartAgent(a);
  // The agent itself ignores SIGPIPE: the child must not inherit that.
  auto& sig = a.Run(MakeExec(1, {"grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"}));
  REQUIRE(sig.exit);
  CHECK(sig.out[1] == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
  // /proc/self/stat: "pid (comm) state ppid pgrp session ..."
  auto& stat = a.Run(MakeExec(2, {"cat", "/proc/self/stat"}));
  REQUIRE(stat.exit);
  std::string line = stat.out[1];
  auto close_paren = line.rfind(')');
  REQUIRE(close_paren != std::string::npos);
  int pid = std::stoi(line);
  char state = 0;
  int ppid = 0, pgrp = 0, session = 0;
  REQUIRE(std::sscanf(line.c_str() + close_paren + 1, " %c %d %d %d", &state, &ppid, &pgrp,
                      &session) == 4);
  CHECK(pgrp == pid);
  CHECK(ppid == a.agent_pid());
  CHECK(session != pid);  // no terminal: a process group, not a new session
}

TEST_CASE("a child killed by TERM is reported as signal TERM", "[agent]") {
  AgentClient a;
  StartAgent(a);
  auto& log = a.Run(MakeExec(1, {"sh", "-c", "echo before; kill -TERM $$; sleep 10"}));
  REQUIRE(log.exit);
  CHECK_FALSE(log.exit->code);
  REQUIRE(log.exit->signal);
  CHECK(*log.exit->signal == "TERM");
  CHECK_FALSE(log.exit->core_dumped);
  CHECK(log.out[1] == "before\n");
}

TEST_CASE("stdout and stderr stay separate", "[agent]") {
  AgentClient a;
  StartAgent(a);
  auto& log = a.Run(MakeExec(1, {"sh", "-c", "echo out; echo err >&2; echo out2"}));
  REQUIRE(log.exit);
  CHECK(log.out[1] == "out\nout2\n");
  CHECK(log.out[2] == "err\n");
}

TEST_CASE("stdin is piped to the child and its Eof ends cat", "[agent]") {
  AgentClient a;
  StartAgent(a);
  auto& log = a.Run(MakeExec(1, {"cat"}), "line one\nline two", true);
  REQUIRE(log.exit);
  CHECK(log.out[1] == "line one\nline two");
  CHECK(log.exit->code == 0);
}

TEST_CASE("a command that never reads stdin still returns", "[agent]") {
  AgentClient a;
  StartAgent(a);
  // Input keeps coming and no Eof is ever sent.
  auto& log = a.Run(MakeExec(1, {"sh", "-c", "echo done"}), std::string(100000, 'x'), false);
  REQUIRE(log.exit);
  CHECK(log.exit->code == 0);
  CHECK(log.out[1] == "done\n");
}

TEST_CASE("10 MiB pass through cat intact", "[agent]") {
  AgentClient a;
  StartAgent(a);
  std::string data(10 * 1024 * 1024, '\0');
  std::mt19937 rng(42);
  for (char& c : data) c = static_cast<char>(rng());
  auto& log = a.Run(MakeExec(1, {"cat"}), data, true);
  REQUIRE(log.exit);
  CHECK(log.exit->code == 0);
  CHECK(log.out[1].size() == data.size());
  CHECK(log.out[1] == data);
}

TEST_CASE("extra fd 3 works in both directions", "[agent]") {
  AgentClient a;
  StartAgent(a);
  proto::Exec out = MakeExec(1, {"sh", "-c", "echo to-three >&3; echo to-one"});
  out.fds.push_back({3, FdSpec::kFromChild, false});
  auto& l1 = a.Run(out);
  REQUIRE(l1.exit);
  CHECK(l1.exit->code == 0);
  CHECK(l1.out[3] == "to-three\n");
  CHECK(l1.out[1] == "to-one\n");
  CHECK(l1.eofs.count(3) == 1);

  proto::Exec in = MakeExec(2, {"sh", "-c", "cat <&3"});
  in.fds.push_back({3, FdSpec::kToChild, false});
  a.Send(in);
  a.Write(2, 3, "from-three", true);
  a.Write(2, 0, "", true);
  auto& l2 = a.channel(2);
  REQUIRE(a.RunUntil([&] { return l2.exit.has_value(); }));
  CHECK(l2.exit->code == 0);
  CHECK(l2.out[1] == "from-three");
}

TEST_CASE("fds the Exec does not name are not inherited", "[agent]") {
  AgentClient a;
  StartAgent(a);
  // Only fd 1 is named: 0 and 2 are /dev/null, nothing above 2 is open.
  proto::Exec e = MakeExec(1, {"sh", "-c", "ls /proc/self/fd; cat; echo gone >&2"});
  e.fds = {{1, FdSpec::kFromChild, false}};
  auto& log = a.Run(e, "", false);
  REQUIRE(log.exit);
  CHECK(log.exit->code == 0);
  CHECK(log.out[1] == "0\n1\n2\n3\n");  // 3 is ls's own directory fd
}

TEST_CASE("Signal INT ends a sleeping child with signal INT", "[agent]") {
  AgentClient a;
  StartAgent(a);
  a.Send(MakeExec(1, {"sleep", "100"}));
  auto& log = a.channel(1);
  REQUIRE(a.RunUntil([&] { return log.started.has_value(); }));
  a.Send(proto::Signal{1, "INT"});
  REQUIRE(a.RunUntil([&] { return log.exit.has_value(); }));
  REQUIRE(log.exit->signal);
  CHECK(*log.exit->signal == "INT");
  CHECK(PidGoneWhileRunning(a, static_cast<pid_t>(log.started->pid)));
}

TEST_CASE("an unknown signal name is a channel error, not a crash", "[agent]") {
  AgentClient a;
  StartAgent(a);
  a.Send(MakeExec(1, {"sleep", "100"}));
  auto& log = a.channel(1);
  REQUIRE(a.RunUntil([&] { return log.started.has_value(); }));
  a.Send(proto::Signal{1, "BOGUS"});
  REQUIRE(a.RunUntil([&] { return !log.errors.empty(); }));
  CHECK(log.errors[0].code == proto::ErrorMsg::kChannel);
  CHECK(log.errors[0].text == "unknown signal name 'BOGUS'");
  a.Send(proto::Signal{1, "KILL"});
  REQUIRE(a.RunUntil([&] { return log.exit.has_value(); }));
  CHECK(log.exit->signal == "KILL");
}

TEST_CASE("a missing command exits 127 with command not found", "[agent]") {
  AgentClient a;
  StartAgent(a);
  auto& log = a.Run(MakeExec(1, {"no-such-command-xyz", "arg"}));
  REQUIRE(log.exit);
  CHECK(log.exit->code == 127);
  CHECK(log.exit->error == "no-such-command-xyz: command not found");
  CHECK_FALSE(log.started);

  auto& abs = a.Run(MakeExec(2, {"/nonexistent/tool"}));
  REQUIRE(abs.exit);
  CHECK(abs.exit->code == 127);
  CHECK(abs.exit->error == "/nonexistent/tool: No such file or directory");
}

TEST_CASE("a file without exec permission exits 126", "[agent]") {
  AgentClient a;
  StartAgent(a);
  auto& log = a.Run(MakeExec(1, {"/etc/passwd"}));
  REQUIRE(log.exit);
  CHECK(log.exit->code == 126);
  CHECK(log.exit->error == "/etc/passwd: Permission denied");
}

TEST_CASE("a missing cwd is reported with its path", "[agent]") {
  AgentClient a;
  StartAgent(a);
  proto::Exec e = MakeExec(1, {"pwd"});
  e.cwd = "/nonexistent/dir";
  auto& log = a.Run(e);
  REQUIRE(log.exit);
  CHECK(log.exit->code == 127);
  CHECK(log.exit->error == "cwd /nonexistent/dir: No such file or directory");

  proto::Exec ok = MakeExec(2, {"pwd"});
  ok.cwd = "/usr/share";
  auto& l2 = a.Run(ok);
  REQUIRE(l2.exit);
  CHECK(l2.out[1] == "/usr/share\n");
}

TEST_CASE("argv zero is preserved and PATH comes from the Exec env", "[agent]") {
  AgentClient a;
  StartAgent(a);
  // The shell's own command line, as the kernel recorded it at execve.
  proto::Exec e = MakeExec(1, {"custom-zero", "-c", "tr '\\0' '\\n' </proc/$$/cmdline", "x y"});
  e.path = "sh";
  auto& log = a.Run(e);
  REQUIRE(log.exit);
  CHECK(log.out[1] == "custom-zero\n-c\ntr '\\0' '\\n' </proc/$$/cmdline\nx y\n");

  proto::Exec nopath = MakeExec(2, {"sh", "-c", "true"});
  nopath.env = {"PATH=/nonexistent"};
  auto& l2 = a.Run(nopath);
  REQUIRE(l2.exit);
  CHECK(l2.exit->code == 127);
  CHECK(l2.exit->error == "sh: command not found");
}

TEST_CASE("the child gets exactly the env that was sent", "[agent]") {
  AgentClient a;
  StartAgent(a);
  proto::Exec e = MakeExec(1, {"/usr/bin/env"});
  e.env = {"A=1", "B=two words", "EMPTY="};
  auto& log = a.Run(e);
  REQUIRE(log.exit);
  CHECK(log.out[1] == "A=1\nB=two words\nEMPTY=\n");
}

TEST_CASE("inherit_env starts from the agent's env and applies the Exec entries", "[agent]") {
  setenv("AGENT_TEST_KEEP", "kept", 1);
  setenv("AGENT_TEST_DROP", "dropped", 1);
  AgentClient a;
  StartAgent(a);  // inherits this test's environment
  proto::Exec e = MakeExec(1, {"sh", "-c",
                               "echo \"${AGENT_TEST_KEEP-unset} ${AGENT_TEST_DROP-unset} "
                               "${AGENT_TEST_NEW-unset}\""});
  e.inherit_env = true;
  e.env = {"AGENT_TEST_DROP", "AGENT_TEST_NEW=new value"};
  auto& log = a.Run(e);
  REQUIRE(log.exit);
  CHECK(log.exit->code == 0);
  CHECK(log.out[1] == "kept unset new value\n");
}

// An Exec whose 0, 1 and 2 are one pty of `rows` x `cols`.
proto::Exec PtyExec(uint32_t ch, std::vector<std::string> argv, uint32_t rows = 24,
                    uint32_t cols = 80) {
  proto::Exec e = MakeExec(ch, std::move(argv));
  e.fds = {
      {0, FdSpec::kToChild, true}, {1, FdSpec::kFromChild, true}, {2, FdSpec::kFromChild, true}};
  e.pty = proto::PtySpec{"xterm-test", rows, cols};
  return e;
}

TEST_CASE("pty mode gives a terminal with the requested size", "[agent]") {
  AgentClient a;
  StartAgent(a);
  auto pty_exec = [](uint32_t ch, std::vector<std::string> argv) {
    return PtyExec(ch, std::move(argv), 33, 101);
  };
  auto& tty = a.Run(pty_exec(1, {"tty"}), "", false);
  REQUIRE(tty.exit);
  CHECK(tty.exit->code == 0);
  CHECK(tty.out[1].rfind("/dev/pts/", 0) == 0);
  CHECK(tty.eofs.count(1) == 1);
  CHECK(tty.eofs.count(2) == 1);

  auto& size = a.Run(pty_exec(2, {"stty", "size"}), "", false);
  REQUIRE(size.exit);
  CHECK(size.out[1] == "33 101\r\n");

  auto& term = a.Run(pty_exec(3, {"sh", "-c", "echo $TERM"}), "", false);
  REQUIRE(term.exit);
  CHECK(term.out[1] == "xterm-test\r\n");

  // Resize, then let the child look again.
  a.Send(pty_exec(4, {"sh", "-c", "read x; stty size"}));
  auto& resized = a.channel(4);
  REQUIRE(a.RunUntil([&] { return resized.started.has_value(); }));
  a.Send(proto::Resize{4, 50, 120});
  a.Write(4, 0, "go\n", false);
  REQUIRE(a.RunUntil([&] { return resized.exit.has_value(); }));
  CHECK(resized.exit->code == 0);
  CHECK(resized.out[1].find("50 120\r\n") != std::string::npos);

  // Eof on a terminal's input types the EOF character.
  auto& cat = a.Run(pty_exec(5, {"cat"}), "", true);
  REQUIRE(cat.exit);
  INFO("signal " << cat.exit->signal.value_or("-") << " out " << cat.out[1] << " log "
                 << a.agent_stderr);
  CHECK(cat.exit->code == 0);
}

TEST_CASE("a pty command stopped as a job is reported and CONT continues it", "[agent]") {
  AgentClient a;
  StartAgent(a);
  // Ctrl-Z typed on its terminal: the kernel stops the foreground group
  // (with an orphaned group it would discard the stop).
  a.Send(PtyExec(1, {"sh", "-c", "echo ready; read x; echo \"got $x\"; exit 3"}));
  auto& log = a.channel(1);
  REQUIRE(a.RunUntil([&] { return log.out[1].find("ready") != std::string::npos; }));
  a.Write(1, 0, "\x1a", false);  // ^Z, the terminal's VSUSP
  REQUIRE(a.RunUntil([&] { return !log.stops.empty(); }));
  CHECK(log.stops[0].signal == "TSTP");
  CHECK_FALSE(log.exit.has_value());
  a.Send(proto::Signal{1, "CONT"});
  a.Write(1, 0, "on\n", false);
  REQUIRE(a.RunUntil([&] { return log.exit.has_value(); }));
  INFO("output: " << log.out[1]);
  CHECK(log.out[1].find("got on") != std::string::npos);
  // The command's own status, not its job leader's.
  CHECK(log.exit->code == 3);
  CHECK(log.stops.size() == 1);

  // A stop signal sent to it, and a death by signal, go the same way.
  a.Send(PtyExec(2, {"sh", "-c", "kill -STOP $$; echo woke; kill -SEGV $$"}));
  auto& second = a.channel(2);
  REQUIRE(a.RunUntil([&] { return !second.stops.empty(); }));
  CHECK(second.stops[0].signal == "STOP");
  a.Send(proto::Signal{2, "CONT"});
  REQUIRE(a.RunUntil([&] { return second.exit.has_value(); }));
  CHECK(second.out[1].find("woke") != std::string::npos);
  REQUIRE(second.exit->signal.has_value());
  CHECK(*second.exit->signal == "SEGV");
}

TEST_CASE("signals to a pty command reach its group and Started names the command", "[agent]") {
  AgentClient a;
  StartAgent(a);
  a.Send(PtyExec(1, {"sh", "-c", "echo $$; exec sleep 100"}));
  auto& log = a.channel(1);
  REQUIRE(a.RunUntil([&] { return log.started.has_value() && log.out[1].find('\n') != std::string::npos; }));
  // Started carries the command's pid (not the job leader's): the shell's $$.
  CHECK(std::to_string(log.started->pid) + "\r\n" == log.out[1]);
  a.Send(proto::Signal{1, "TERM"});
  REQUIRE(a.RunUntil([&] { return log.exit.has_value(); }));
  REQUIRE(log.exit->signal.has_value());
  CHECK(*log.exit->signal == "TERM");
  CHECK(PidGoneWhileRunning(a, static_cast<pid_t>(log.started->pid)));
}

TEST_CASE("with stdin a pipe, keys sent on the pty's output fd reach /dev/tty", "[agent]") {
  // `producer | less`: stdin is a pipe, stdout the terminal, and the pager
  // reads its keys from /dev/tty.
  AgentClient a;
  StartAgent(a);
  proto::Exec e = MakeExec(1, {"sh", "-c", "read piped; read key </dev/tty; echo \"$piped/$key\""});
  e.fds = {
      {0, FdSpec::kToChild, false}, {1, FdSpec::kFromChild, true}, {2, FdSpec::kFromChild, true}};
  e.pty = proto::PtySpec{"xterm-test", 24, 80};
  a.Send(e);
  a.Write(1, 0, "from-pipe\n", true);
  a.Write(1, 1, "typed\n", false);
  auto& log = a.channel(1);
  REQUIRE(a.RunUntil([&] { return log.exit.has_value(); }));
  CHECK(log.exit->code == 0);
  // The terminal echoes the keys, then the child's line.
  CHECK(log.out[1] == "typed\r\nfrom-pipe/typed\r\n");
}

TEST_CASE("100 commands run concurrently on one session", "[agent]") {
  AgentClient a;
  StartAgent(a);
  constexpr uint32_t kCount = 100;
  for (uint32_t i = 1; i <= kCount; ++i) {
    a.Send(MakeExec(i, {"sh", "-c", "read x; echo \"$x-$1\"", "sh", std::to_string(i)}));
  }
  REQUIRE(a.RunUntil([&] {
    for (uint32_t i = 1; i <= kCount; ++i) {
      if (!a.channel(i).started) return false;
    }
    return true;
  }));
  // All are running at once, waiting for their input.
  for (uint32_t i = 1; i <= kCount; ++i) CHECK_FALSE(a.channel(i).exit);
  for (uint32_t i = 1; i <= kCount; ++i) a.Write(i, 0, "in\n", true);
  REQUIRE(a.RunUntil([&] {
    for (uint32_t i = 1; i <= kCount; ++i) {
      if (!a.channel(i).exit) return false;
    }
    return true;
  }));
  for (uint32_t i = 1; i <= kCount; ++i) {
    CHECK(a.channel(i).exit->code == 0);
    CHECK(a.channel(i).out[1] == "in-" + std::to_string(i) + "\n");
  }
}

TEST_CASE("PathQuery lists sh and the first occurrence of a name wins", "[agent]") {
  AgentClient a;
  StartAgent(a);
  a.Send(proto::PathQuery{7, {}});
  auto find_info = [&a](uint64_t id) -> const proto::PathInfo* {
    for (const auto& m : a.messages) {
      if (const auto* p = std::get_if<proto::PathInfo>(&m); p != nullptr && p->id == id) return p;
    }
    return nullptr;
  };
  REQUIRE(a.RunUntil([&] { return find_info(7) != nullptr; }));
  const proto::PathInfo* all = find_info(7);
  REQUIRE(all != nullptr);
  bool found_sh = false;
  for (const auto& e : all->entries) found_sh = found_sh || e.name == "sh";
  CHECK(found_sh);

  char tmpl[] = "/tmp/agent-pq-XXXXXX";
  std::string root = mkdtemp(tmpl);
  std::string d1 = root + "/a", d2 = root + "/b";
  mkdir(d1.c_str(), 0755);
  mkdir(d2.c_str(), 0755);
  for (const std::string& p : {d1 + "/tool", d2 + "/tool", d2 + "/only-b"}) {
    std::ofstream(p) << "#!/bin/sh\n";
    chmod(p.c_str(), 0755);
  }
  a.Send(proto::PathQuery{8, {d1, d2}});
  REQUIRE(a.RunUntil([&] { return find_info(8) != nullptr; }));
  const proto::PathInfo* two = find_info(8);
  REQUIRE(two != nullptr);
  REQUIRE(two->entries.size() == 2);
  CHECK(two->entries[0].name == "tool");
  CHECK(two->entries[0].path == d1 + "/tool");
  CHECK(two->entries[1].name == "only-b");
  CHECK(two->entries[1].path == d2 + "/only-b");
  (void)!system(("rm -rf '" + root + "'").c_str());
}

TEST_CASE("Ping gets a Pong with the same id", "[agent]") {
  AgentClient a;
  StartAgent(a);
  a.Send(proto::Ping{99});
  REQUIRE(a.RunUntil([&] {
    for (const auto& m : a.messages) {
      if (const auto* p = std::get_if<proto::Pong>(&m); p != nullptr && p->id == 99) return true;
    }
    return false;
  }));
}

TEST_CASE("Close from the peer kills a running process group", "[agent]") {
  AgentClient a;
  StartAgent(a);
  a.Send(MakeExec(1, {"sh", "-c", "sleep 100 & echo $!; wait"}));
  auto& log = a.channel(1);
  REQUIRE(a.RunUntil([&] { return log.out[1].find('\n') != std::string::npos; }));
  pid_t grandchild = std::stoi(log.out[1]);
  a.Send(proto::Close{1});
  CHECK(PidGoneWhileRunning(a, static_cast<pid_t>(log.started->pid)));
  CHECK(PidGoneWhileRunning(a, grandchild));
  // The session goes on.
  auto& next = a.Run(MakeExec(2, {"echo", "still here"}));
  REQUIRE(next.exit);
  CHECK(next.out[1] == "still here\n");
}

TEST_CASE("closing the agent's stdin kills everything it started", "[agent]") {
  AgentClient a;
  StartAgent(a);
  a.Send(MakeExec(1, {"sleep", "100"}));
  // Ignores SIGHUP: only the SIGKILL after the grace period ends it.
  a.Send(MakeExec(2, {"sh", "-c", "trap '' HUP; sleep 100 & echo $!; wait"}));
  REQUIRE(a.RunUntil(
      [&] { return a.channel(1).started && a.channel(2).out[1].find('\n') != std::string::npos; }));
  pid_t sleeper = static_cast<pid_t>(a.channel(1).started->pid);
  pid_t stubborn = static_cast<pid_t>(a.channel(2).started->pid);
  pid_t grandchild = std::stoi(a.channel(2).out[1]);
  // Leaves its process group and session; the agent, as subreaper, inherits it.
  auto& escaped =
      a.Run(MakeExec(3, {"sh", "-c", "setsid sleep 100 >/dev/null 2>&1 </dev/null & echo $!"}));
  REQUIRE(escaped.exit);
  pid_t daemon = std::stoi(escaped.out[1]);
  CHECK(ProcessExists(daemon));
  a.CloseStdin();
  auto status = a.WaitAgent();
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  CHECK(PidGone(sleeper, 1000));
  CHECK(PidGone(stubborn, 1000));
  CHECK(PidGone(grandchild, 1000));
  CHECK(PidGone(daemon, 1000));
}

TEST_CASE("a malformed frame ends the session with status 2 and a message", "[agent]") {
  AgentClient a;
  StartAgent(a);
  a.Send(MakeExec(1, {"sleep", "100"}));
  REQUIRE(a.RunUntil([&] { return a.channel(1).started.has_value(); }));
  pid_t sleeper = static_cast<pid_t>(a.channel(1).started->pid);
  // A complete frame whose payload is not a CBOR message.
  REQUIRE(a.WriteRaw(std::string("\x00\x00\x00\x03\xff\xff\xff", 7)).ok());
  auto status = a.WaitAgent();
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 2);
  CHECK(a.agent_stderr.find("mproxy-agent: protocol error: ") != std::string::npos);
  CHECK(PidGone(sleeper, 1000));
  bool told = false;
  for (const auto& m : a.messages) {
    if (const auto* e = std::get_if<proto::ErrorMsg>(&m))
      told = e->code == proto::ErrorMsg::kProtocol;
  }
  CHECK(told);
}

TEST_CASE("an oversized frame length is refused before allocation", "[agent]") {
  AgentClient a;
  StartAgent(a);
  REQUIRE(a.WriteRaw(std::string("\x7f\xff\xff\xff", 4)).ok());
  auto status = a.WaitAgent();
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 2);
  CHECK(a.agent_stderr.find("protocol error") != std::string::npos);
}

}  // namespace
}  // namespace mproxy::testing
