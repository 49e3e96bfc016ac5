// TmuxPane: every call is one short-lived tmux client on the private socket.
#include "tests/session/tmux_pane.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <thread>

#include "tests/e2e/e2e_util.h"

namespace mproxy::session_test {
namespace {

using Clock = std::chrono::steady_clock;
constexpr char kTmux[] = "/usr/bin/tmux";
constexpr char kTarget[] = "main";

}  // namespace

TmuxPane::TmuxPane(const SessionFixture& s, const std::vector<std::string>& command,
                   const std::vector<std::string>& env, int cols, int rows)
    : s_(s), socket_(s.scratch() + "/tmux.sock") {
  if (access(kTmux, X_OK) != 0) s.SkipNow(std::string(kTmux) + " is missing (package tmux)");
  const std::string conf = s.scratch() + "/tmux.conf";
  e2e::WriteFile(conf,
                 "set -g remain-on-exit on\n"
                 "set -g default-terminal screen\n"
                 "set -g history-limit 5000\n"
                 "set -g status off\n");
  s.GiveToUser(conf);
  std::vector<std::string> argv = {kTmux,
                                   "-S",
                                   socket_,
                                   "-f",
                                   conf,
                                   "new-session",
                                   "-d",
                                   "-s",
                                   kTarget,
                                   "-x",
                                   std::to_string(cols),
                                   "-y",
                                   std::to_string(rows),
                                   "--"};
  argv.insert(argv.end(), command.begin(), command.end());
  auto r = e2e::Run(s.AsUser(argv, env), std::chrono::seconds(30));
  INFO("tmux new-session: " << r.err);
  REQUIRE(r.Status() == "exit 0");
}

TmuxPane::~TmuxPane() {
  (void)e2e::Run(s_.AsUser({kTmux, "-S", socket_, "kill-server"}), std::chrono::seconds(30));
}

std::string TmuxPane::Tmux(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kTmux, "-S", socket_};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = e2e::Run(s_.AsUser(argv), std::chrono::seconds(30));
  INFO("tmux " << args[0] << ": " << r.err);
  REQUIRE(r.Status() == "exit 0");
  return r.out;
}

void TmuxPane::Type(const std::string& text) { Tmux({"send-keys", "-t", kTarget, "-l", text}); }

void TmuxPane::Press(const std::string& key) { Tmux({"send-keys", "-t", kTarget, key}); }

void TmuxPane::Line(const std::string& text) {
  Type(text);
  Press("Enter");
}

void TmuxPane::Resize(int cols, int rows) {
  Tmux({"resize-window", "-t", kTarget, "-x", std::to_string(cols), "-y", std::to_string(rows)});
}

std::string TmuxPane::Screen() {
  last_screen_ = Tmux({"capture-pane", "-p", "-t", kTarget, "-S", "-"});
  return last_screen_;
}

bool TmuxPane::WaitFor(const std::function<bool(const std::string&)>& pred,
                       std::chrono::seconds limit) {
  const auto deadline = Clock::now() + limit;
  for (;;) {
    if (pred(Screen())) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

bool TmuxPane::WaitForLine(const std::string& line, std::chrono::seconds limit) {
  return WaitFor([&](const std::string& screen) { return HasLine(screen, line); }, limit);
}

bool TmuxPane::WaitForText(const std::string& text, std::chrono::seconds limit) {
  return WaitFor([&](const std::string& screen) { return screen.find(text) != std::string::npos; },
                 limit);
}

}  // namespace mproxy::session_test
