// The shim's terminal: raw mode on its stdin while the remote pty does echo,
// line editing and ^C, put back on every way out; and the window size.
#pragma once

#include <termios.h>

#include <cstdint>

namespace mproxy::shim {

// Owned by the shim's main loop; single-threaded. Restore() is also what
// every exit path calls, so it is idempotent and never fails loudly.
class RawMode {
 public:
  RawMode() = default;
  RawMode(const RawMode&) = delete;
  RawMode& operator=(const RawMode&) = delete;
  ~RawMode() { Restore(); }

  // Saves the settings of terminal `fd` (the first time) and switches it to
  // raw mode. False when `fd` is not a terminal or refuses.
  bool Enter(int fd);
  // Puts back the settings saved by the first Enter(), if raw mode is on.
  void Restore();
  // Raw mode again after a Restore(), with the same saved settings.
  void Reenter();

  bool active() const { return active_; }

 private:
  int fd_ = -1;
  termios saved_{};
  bool saved_valid_ = false;
  bool active_ = false;
};

// The size of terminal `fd`; false when it has none.
bool GetWindowSize(int fd, uint32_t* rows, uint32_t* cols);

}  // namespace mproxy::shim
