// A terminal for interactive end-to-end tests: one tmux pane on a private
// server socket, driven with send-keys and read with capture-pane.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "tests/session/session_fixture.h"

namespace mproxy::session_test {

// Owned by one test; not thread-safe. tmux runs as the fixture's user, with
// the clean environment of SessionFixture::AsUser() plus `env`; the pane
// keeps showing after its program exits.
class TmuxPane {
 public:
  // Skip()s (through the fixture) when tmux is not installed.
  TmuxPane(const SessionFixture& s, const std::vector<std::string>& command,
           const std::vector<std::string>& env, int cols = 120, int rows = 40);
  ~TmuxPane();  // kills the tmux server and with it the pane's program
  TmuxPane(const TmuxPane&) = delete;
  TmuxPane& operator=(const TmuxPane&) = delete;

  // Types `text` literally / presses a key by tmux name ("Enter", "C-c").
  void Type(const std::string& text);
  void Press(const std::string& key);
  // Type(text) then Enter.
  void Line(const std::string& text);
  void Resize(int cols, int rows);

  // What the pane shows now, history included, trailing blanks trimmed.
  std::string Screen();
  // Polls Screen() until `pred` holds (true) or `limit` passes (false).
  bool WaitFor(const std::function<bool(const std::string&)>& pred, std::chrono::seconds limit);
  // A line of the screen equals `line` / the screen contains `text`.
  bool WaitForLine(const std::string& line, std::chrono::seconds limit);
  bool WaitForText(const std::string& text, std::chrono::seconds limit);
  // The screen seen by the last Screen() / WaitFor(), for failure messages.
  const std::string& last_screen() const { return last_screen_; }

 private:
  std::string Tmux(const std::vector<std::string>& args);

  const SessionFixture& s_;
  std::string socket_;
  std::string last_screen_;
};

}  // namespace mproxy::session_test
