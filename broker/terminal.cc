// RawMode and window size.
#include "broker/terminal.h"

#include <sys/ioctl.h>
#include <unistd.h>

namespace mproxy::broker {
namespace {

// Saved states for RestoreAllTerminals; a tiny fixed table so the restore
// path needs no allocation or locking.
struct Saved {
  int fd;
  termios tio;
  volatile bool used;
};
Saved g_saved[4];

}  // namespace

std::optional<WindowSize> GetWindowSize(int fd) {
  winsize ws {};
  if (ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_row == 0 || ws.ws_col == 0) return std::nullopt;
  return WindowSize{ws.ws_row, ws.ws_col};
}

RawMode::RawMode(int fd) : fd_(fd) {
  if (!isatty(fd) || tcgetattr(fd, &saved_) != 0) return;
  termios raw = saved_;
  cfmakeraw(&raw);
  for (auto& s : g_saved) {
    if (!s.used) {
      s.fd = fd;
      s.tio = saved_;
      s.used = true;
      break;
    }
  }
  active_ = tcsetattr(fd, TCSADRAIN, &raw) == 0;
}

RawMode::~RawMode() { Restore(); }

void RawMode::Restore() {
  if (!active_) return;
  tcsetattr(fd_, TCSADRAIN, &saved_);
  active_ = false;
  for (auto& s : g_saved) {
    if (s.used && s.fd == fd_) s.used = false;
  }
}

void RestoreAllTerminals() {
  for (auto& s : g_saved) {
    if (s.used) tcsetattr(s.fd, TCSANOW, &s.tio);
  }
}

}  // namespace mproxy::broker
