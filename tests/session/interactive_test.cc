// An interactive `mproxy TARGET -- bash -i` in a tmux pane: remote full-screen
// programs draw on the local terminal and leave it sane, Ctrl-C reaches the
// remote command, window sizes follow, and the session's exit status is bash's.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <thread>

#include "tests/e2e/e2e_util.h"
#include "tests/session/session_fixture.h"
#include "tests/session/tmux_pane.h"

namespace mproxy::session_test {
namespace {

using std::chrono::seconds;

constexpr seconds kWait(30);

// CHECK(cond), with the screen `cond` last looked at in the failure message.
#define CHECK_SCREEN(pane, cond)                                                    \
  do {                                                                              \
    if (!(cond)) FAIL_CHECK(#cond << "\nscreen:\n" << Quote((pane).last_screen())); \
  } while (false)
constexpr char kPrompt[] = "mpx$ ";
// The prompt as capture-pane shows it at the end of a line (blanks trimmed).
constexpr char kPromptShown[] = "mpx$";

// An interactive bash through mproxy in a 120x40 pane, at its first prompt.
std::unique_ptr<TmuxPane> StartShell(const SessionFixture& s) {
  // sh reports mproxy's exit status on the pane when it ends.
  std::vector<std::string> command = {"/bin/sh", "-c", "\"$@\"; echo \"mproxy exited $?\"", "sh"};
  for (auto& a : s.MproxyCommand({"bash", "--norc", "--noprofile", "-i"})) command.push_back(a);
  auto pane = std::make_unique<TmuxPane>(
      s, command, std::vector<std::string>{std::string("PS1=") + kPrompt, "HISTFILE=/dev/null"});
  const bool ready = pane->WaitForText(kPromptShown, seconds(60));
  INFO("screen:\n" << Quote(pane->last_screen()));
  REQUIRE(ready);
  return pane;
}

// True when bash waits at an empty prompt: its last non-blank line is the
// prompt alone.
bool AtPrompt(const std::string& screen) {
  std::string_view s = screen;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  size_t nl = s.rfind('\n');
  return s.substr(nl == std::string_view::npos ? 0 : nl + 1) == kPromptShown;
}

// Types a command line once bash is back at its prompt, as a person would:
// keys typed while a remote program is still ending go to that program (its
// shim forwards the terminal's input), as with `ssh -t`.
void Command(TmuxPane& pane, const std::string& line) {
  CHECK_SCREEN(pane, pane.WaitFor(AtPrompt, kWait));
  pane.Line(line);
}

// The line `echo ok` prints, typed so that the command line itself never
// equals the expected output line.
void CheckEchoOk(TmuxPane& pane) {
  Command(pane, "echo o''k");
  CHECK_SCREEN(pane, pane.WaitForLine("ok", kWait));
}

std::string Editor(const SessionFixture& s) {
  // The remote host shares this machine's /usr.
  for (const char* e : {"/usr/bin/vim", "/usr/bin/vi"}) {
    if (access(e, X_OK) == 0) return std::string(e).substr(9);
  }
  s.SkipNow("neither vim nor vi is installed");
}

void RemoteEditor(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  const std::string editor = Editor(s);
  auto pane = StartShell(s);
  std::string marker = s.MarkerText();
  marker.pop_back();

  // /usr/bin/stty is an absolute path, so it runs locally: it reads the
  // local terminal's modes before and after the remote editor.
  Command(*pane, "before=$(/usr/bin/stty -g)");
  Command(*pane, editor + " -u NONE -N \"$M\"");
  // The remote-only file's content and the editor's empty-line tildes.
  CHECK_SCREEN(*pane, pane->WaitFor(
                          [&](const std::string& screen) {
                            return HasLine(screen, marker) && e2e::CountOf(screen, "\n~\n") >= 10;
                          },
                          kWait));
  pane->Type(":q");
  pane->Press("Enter");
  Command(*pane, "[ \"$(/usr/bin/stty -g)\" = \"$before\" ] && echo tty-same || echo tty-changed");
  CHECK_SCREEN(*pane, pane->WaitForLine("tty-same", kWait));
  // Canonical mode and echo work for a local reader: Enter ends the line.
  Command(*pane, "read -r x; echo \"got [$x]\"");
  pane->Line("typed words");
  CHECK_SCREEN(*pane, pane->WaitForLine("got [typed words]", kWait));
  CheckEchoOk(*pane);

  Command(*pane, "exit 7");
  CHECK_SCREEN(*pane, pane->WaitForLine("mproxy exited 7", kWait));
}
SESSION_TEST_CASE("remote vim in a tmux pane draws, quits and leaves the terminal sane",
                  RemoteEditor)

void RemoteTopAndLess(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  auto pane = StartShell(s);
  std::string marker = s.MarkerText();
  marker.pop_back();

  Command(*pane, "top");
  CHECK_SCREEN(*pane, pane->WaitFor(
                          [](const std::string& screen) {
                            return screen.find("load average") != std::string::npos &&
                                   screen.find("Tasks:") != std::string::npos;
                          },
                          kWait));
  pane->Type("q");
  CheckEchoOk(*pane);

  Command(*pane, "less \"$M\"");
  CHECK_SCREEN(*pane, pane->WaitForLine(marker, kWait));
  pane->Type("q");
  CheckEchoOk(*pane);

  Command(*pane, "sh -c 'tty >/dev/null && echo has-a-tty; echo \"term=$TERM\"'");
  CHECK_SCREEN(*pane, pane->WaitForLine("has-a-tty", kWait));
  CHECK_SCREEN(*pane, pane->WaitForLine("term=screen", kWait));
}
SESSION_TEST_CASE("remote top and less in a tmux pane draw and quit cleanly", RemoteTopAndLess)

void CtrlCAndWindowSize(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  auto pane = StartShell(s);

  const std::string arg = e2e::UniqueSleep(1000);
  const std::string pattern = "^sleep " + arg + "$";
  Command(*pane, "sleep " + arg);
  REQUIRE(s.WaitForRemote(pattern, seconds(60)));
  pane->Press("C-c");
  CHECK(s.WaitForNoRemote(pattern, seconds(5)));
  Command(*pane, "echo \"st=$?\"");
  CHECK_SCREEN(*pane, pane->WaitForLine("st=130", kWait));

  // The remote pty starts at the pane's size and follows a resize while the
  // command runs.
  Command(*pane, "stty size");
  CHECK_SCREEN(*pane, pane->WaitForLine("40 120", kWait));
  Command(*pane, "sh -c 'read x; stty size'");
  REQUIRE(s.WaitForRemote("^sh -c read x; stty size$", seconds(60)));
  pane->Resize(100, 30);
  // Let the resize travel before the Enter does.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  pane->Press("Enter");
  CHECK_SCREEN(*pane, pane->WaitForLine("30 100", kWait));
  CheckEchoOk(*pane);
}
SESSION_TEST_CASE("Ctrl-C in an interactive session ends the remote command and resizes follow",
                  CtrlCAndWindowSize)

// The state letter of /proc/PID/stat ('T' stopped, 'S' sleeping), or '?'.
char ProcessState(pid_t pid) {
  std::string stat = e2e::ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? '?' : stat[paren + 2];
}

void CtrlZ(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  auto pane = StartShell(s);

  // A remote command on the remote pty, waiting for a line.
  const std::string tag = e2e::UniqueSleep(1);
  const std::string script = "echo ready-" + tag + "; read x; echo \"got [$x]\"";
  Command(*pane, "sh -c '" + script + "'");
  CHECK_SCREEN(*pane, pane->WaitForLine("ready-" + tag, kWait));
  const std::string pattern = "^sh -c echo ready-" + tag;
  REQUIRE(s.WaitForRemote(pattern, seconds(60)));
  std::vector<pid_t> remote = s.RemotePids(pattern);
  REQUIRE(remote.size() == 1);

  // Ctrl-Z: the remote command stops as a job, and so does its shim here, so
  // bash reports a stopped job and gives the prompt back.
  pane->Press("C-z");
  CHECK_SCREEN(*pane, pane->WaitFor(
                          [](const std::string& screen) {
                            return screen.find("Stopped") != std::string::npos &&
                                   AtPrompt(screen);
                          },
                          kWait));
  CHECK(ProcessState(remote[0]) == 'T');
  Command(*pane, "jobs");
  CHECK_SCREEN(*pane, pane->WaitFor(
                          [](const std::string& screen) {
                            return e2e::CountOf(screen, "Stopped") >= 2 && AtPrompt(screen);
                          },
                          kWait));

  // fg: both go on, and the terminal is the remote command's again.
  Command(*pane, "fg");
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (ProcessState(remote[0]) == 'T' && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(ProcessState(remote[0]) != 'T');
  pane->Line("after fg");
  CHECK_SCREEN(*pane, pane->WaitForLine("got [after fg]", kWait));
  Command(*pane, "echo \"st=$?\"");
  CHECK_SCREEN(*pane, pane->WaitForLine("st=0", kWait));
  CheckEchoOk(*pane);
}
SESSION_TEST_CASE("Ctrl-Z stops a remote terminal command as a job and fg continues it", CtrlZ)

}  // namespace
}  // namespace mproxy::session_test
