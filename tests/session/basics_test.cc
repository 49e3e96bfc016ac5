// What a program sees of the commands it starts in a session: where they run,
// their output and exit codes, stdin and EOF, extra fds and process
// substitution, all through `mproxy TARGET -- bash -c '...'`.
#include <catch2/catch.hpp>

#include "tests/e2e/e2e_util.h"
#include "tests/session/session_fixture.h"

namespace mproxy::session_test {
namespace {

// The marker exists only remotely: `cat` (remote) prints it, while bash's
// own file access (test, read, $(<file)) looks at the local side.
void RemoteCatLocalBuiltins(As as) {
  SessionFixture s(as);
  auto r = s.Bash(
      "cat \"$M\"\n"
      "if [ -e \"$M\" ]; then echo 'test: exists locally'; else echo 'test: missing locally'; fi\n"
      "{ read -r line <\"$M\"; } 2>/dev/null && echo \"read: $line\" || echo 'read: failed'\n"
      "head -c 11 \"$M\"; echo\n");
  INFO(s.Diagnostics());
  CHECK(r.Status() == "exit 0");
  CHECK(r.out == s.MarkerText() + "test: missing locally\nread: failed\nmproxy remo\n");
  CHECK(r.err == "");
}
SESSION_TEST_CASE("cat shows a remote-only file while bash's own reads see the local side",
                  RemoteCatLocalBuiltins)

void LocalRemoteLocalPipeline(As as) {
  SessionFixture s(as);
  auto r = s.Bash("echo hi | grep hi | wc -c");
  INFO(s.Diagnostics());
  CHECK(r.Status() == "exit 0");
  CHECK(r.out == "3\n");
  CHECK(r.err == "");

  // Remote to remote through a local pipe, with the remote file at the start.
  auto longer = s.Bash("cat \"$M\" | tr a-z A-Z | sed 's/PORT/port/'; echo \"${PIPESTATUS[*]}\"");
  std::string upper = s.MarkerText();
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  upper.replace(upper.find("PORT"), 4, "port");
  CHECK(longer.Status() == "exit 0");
  CHECK(longer.out == upper + "0 0 0\n");
  CHECK(longer.err == "");
}
SESSION_TEST_CASE(
    "a local to remote to local pipeline carries the bytes: echo hi | grep hi | wc -c",
    LocalRemoteLocalPipeline)

void ExitCodes(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  auto r = s.Bash(
      "sh -c 'exit 0'; echo \"exit0 $?\"\n"
      "sh -c 'exit 42'; echo \"exit42 $?\"\n"
      "grep -q nothing-like-this \"$M\"; echo \"grep-miss $?\"\n"
      "false; echo \"false $?\"\n");
  CHECK(r.Status() == "exit 0");
  CHECK(r.out == "exit0 0\nexit42 42\ngrep-miss 1\nfalse 1\n");
  CHECK(r.err == "");

  // The last command's status is the program's, and so mproxy's.
  auto last = s.Bash("sh -c 'exit 42'; sh -c 'exit 42'");
  CHECK(last.Status() == "exit 42");
  CHECK(last.out == "");
  CHECK(last.err == "");
  auto program = s.Bash("exit 3");
  CHECK(program.Status() == "exit 3");
  CHECK(program.err == "");
}
SESSION_TEST_CASE("remote exit codes arrive unchanged, and mproxy exits with the program's",
                  ExitCodes)

// A remote command killed by a signal looks to bash like a local child
// killed by it: $? is 128+n and bash reports "Terminated" / "Killed", which it
// does only for a child that really died of the signal (the shim re-raises).
void SignalStatus(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  auto r = s.Bash(
      "sh -c 'kill -TERM $$'; echo \"term $?\"\n"
      "sh -c 'kill -KILL $$'; echo \"kill $?\"\n"
      "sh -c 'kill -USR1 $$'; echo \"usr1 $?\"\n");
  CHECK(r.Status() == "exit 0");
  CHECK(r.out == "term 143\nkill 137\nusr1 138\n");
  INFO("stderr:\n" << Quote(r.err));
  CHECK(e2e::CountOf(r.err, "\n") == 3);
  CHECK(e2e::CountOf(r.err, "Terminated") == 1);
  CHECK(e2e::CountOf(r.err, "Killed") == 1);
  CHECK(e2e::CountOf(r.err, "User defined signal 1") == 1);

  auto last = s.Bash("sh -c 'kill -TERM $$'; exit $?");
  CHECK(last.Status() == "exit 143");
}
SESSION_TEST_CASE("a remote command killed by a signal gives 128+n and bash sees the signal",
                  SignalStatus)

// The remote PATH gets a remote-only directory with a command in it; the
// session lists it, then it disappears remotely before it runs again.
void MissingRemoteCommand(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  const std::string name = "mproxy-vanishing-cmd";
  auto setup = s.InRemoteNamespace(
      "mount -t tmpfs -o mode=0777,size=1m mproxy-games /usr/games && "
      "printf '#!/bin/sh\\necho \"vanishing ran as $(id -un)\"\\n' >/usr/games/" +
      name + " && chmod 0777 /usr/games/" + name);
  INFO(setup.err);
  REQUIRE(setup.Status() == "exit 0");

  auto r = s.Bash(name +
                  "; echo \"first $?\"\n"
                  "[ -e /usr/games/" +
                  name +
                  " ] || echo 'not here locally'\n"
                  "rm /usr/games/" +
                  name + "\n" + name + "; echo \"second $?\"\n");
  CHECK(r.Status() == "exit 0");
  CHECK(r.out ==
        "vanishing ran as " + s.sshd().user() + "\nfirst 0\nnot here locally\nsecond 127\n");
  CHECK(r.err == "mproxy: " + name + ": command not found on " + s.target() + "\n");
}
SESSION_TEST_CASE(
    "a remote command that is gone gives 127 and 'mproxy: NAME: command not found on HOST'",
    MissingRemoteCommand)

void StderrApart(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  auto r = s.Bash(
      "sh -c 'echo to-out; echo to-err >&2; echo more-out; echo more-err >&2'\n"
      "grep x /nonexistent-session-path\n"
      "echo \"grep $?\"\n"
      "sh -c 'echo swapped >&2' 2>&1 | tr a-z A-Z\n"
      "sh -c 'echo silenced >&2' 2>/dev/null\n");
  CHECK(r.Status() == "exit 0");
  CHECK(r.out == "to-out\nmore-out\ngrep 2\nSWAPPED\n");
  CHECK(r.err == "to-err\nmore-err\ngrep: /nonexistent-session-path: No such file or directory\n");
}
SESSION_TEST_CASE("remote stderr stays apart from stdout and follows bash's redirections",
                  StderrApart)

void StdinAndEof(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  auto r = s.Bash(
      "echo x | cat\n"
      "cat </dev/null; echo \"null $?\"\n"
      "printf 'no newline' | wc -c\n"
      "cat\n",
      {}, "first line of mproxy's stdin\nthe rest\n");
  CHECK(r.Status() == "exit 0");
  CHECK(r.out == "x\nnull 0\n10\nfirst line of mproxy's stdin\nthe rest\n");
  CHECK(r.err == "");

  std::string big(3 * 1024 * 1024 + 7, 'z');
  auto wc = s.Bash("wc -c", {}, big);
  CHECK(wc.Status() == "exit 0");
  CHECK(wc.out == std::to_string(big.size()) + "\n");
  CHECK(wc.err == "");
}
SESSION_TEST_CASE("remote commands read local pipes and mproxy's stdin to EOF", StdinAndEof)

void ExtraFds(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  auto r = s.Bash(
      "sh -c 'echo three >&3' 3>\"$T/out\"\n"
      "echo \"[$(<\"$T/out\")]\"\n"
      "printf 'four\\n' >\"$T/in\"\n"
      "sh -c 'cat <&4' 4<\"$T/in\"\n"
      "sh -c 'echo appended >&5' 5>>\"$T/out\"\n"
      "echo \"[$(<\"$T/out\")]\"\n"
      "exec 7>\"$T/held\"\n"
      "sh -c 'echo seven >&7'; exec 7>&-\n"
      "echo \"[$(<\"$T/held\")]\"\n");
  CHECK(r.Status() == "exit 0");
  CHECK(r.out == "[three]\nfour\n[three\nappended]\n[seven]\n");
  CHECK(r.err == "");
}
SESSION_TEST_CASE("cmd 3>out fills the local file, and other inherited fds work too", ExtraFds)

void ProcessSubstitution(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  auto r = s.Bash(
      "diff <(echo a) <(echo a); echo \"same $?\"\n"
      "diff <(echo a) <(echo b); echo \"differ $?\"\n"
      "diff <(cat \"$M\") <(cat \"$M\"); echo \"remote same $?\"\n"
      "diff <(cat \"$M\") <(sed 's/side/SIDE/' \"$M\") | grep -c '^[<>]'\n"
      "cat <(grep -o remote \"$M\") <(echo local)\n"
      // The second <(...) inherits the first one's read end (fd 63) without
      // reading it; the first one's output must still reach diff.
      "diff <(sleep 0.5; cat \"$M\") <(cat \"$M\"; sleep 2); echo \"slow same $?\"\n");
  CHECK(r.Status() == "exit 0");
  CHECK(r.out ==
        "same 0\n1c1\n< a\n---\n> b\ndiffer 1\nremote same 0\n2\nremote\nlocal\n"
        "slow same 0\n");
  CHECK(r.err == "");
}
SESSION_TEST_CASE("diff <(...) <(...) works, with local and with remote commands inside",
                  ProcessSubstitution)

// mproxy's own output is only the program's: nothing on stderr on success.
void QuietOnSuccess(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  auto r = s.Bash("cat \"$M\"; ls / >/dev/null; sh -c true");
  CHECK(r.Status() == "exit 0");
  CHECK(r.out == s.MarkerText());
  CHECK(r.err == "");
  // Nor when the program fails: its status, its own messages, nothing else.
  auto fail = s.Bash("echo program-err >&2; exit 9");
  CHECK(fail.Status() == "exit 9");
  CHECK(fail.out == "");
  CHECK(fail.err == "program-err\n");
}
SESSION_TEST_CASE("mproxy prints nothing of its own: stderr is empty on success", QuietOnSuccess)

}  // namespace
}  // namespace mproxy::session_test
