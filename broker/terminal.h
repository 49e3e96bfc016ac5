// The local terminal: raw mode while a remote pty owns the screen, restored
// on every exit path, and the window size.
#pragma once

#include <termios.h>

#include <cstdint>
#include <optional>

namespace mproxy::broker {

struct WindowSize {
  uint32_t rows = 24;
  uint32_t cols = 80;
};

// The size of the terminal on `fd`, if it is one.
std::optional<WindowSize> GetWindowSize(int fd);

// Puts a terminal into raw mode and restores it in the destructor, and from
// RestoreAllTerminals() (for exit paths that skip destructors). One per fd.
class RawMode {
 public:
  explicit RawMode(int fd);
  ~RawMode();
  RawMode(const RawMode&) = delete;
  RawMode& operator=(const RawMode&) = delete;

  bool active() const { return active_; }
  void Restore();

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

// Restores every terminal a live RawMode changed. Async-signal-safe.
void RestoreAllTerminals();

}  // namespace mproxy::broker
