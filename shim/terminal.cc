// Raw mode and window size for the shim's terminal.
#include "shim/terminal.h"

#include <sys/ioctl.h>

#include <cerrno>
#include <csignal>

namespace mproxy::shim {
namespace {

bool SetAttr(int fd, const termios& t) {
  // TCSANOW: output already written was processed when it was written, and
  // TCSADRAIN could wait forever on a terminal nobody reads.
  while (::tcsetattr(fd, TCSANOW, &t) != 0) {
    if (errno != EINTR) return false;
  }
  return true;
}

}  // namespace

bool RawMode::Enter(int fd) {
  if (!saved_valid_) {
    if (::tcgetattr(fd, &saved_) != 0) return false;
    saved_valid_ = true;
    fd_ = fd;
  }
  termios raw = saved_;
  ::cfmakeraw(&raw);
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  active_ = SetAttr(fd_, raw);
  return active_;
}

void RawMode::Reenter() {
  if (saved_valid_ && !active_) Enter(fd_);
}

void RawMode::Restore() {
  if (!active_) return;
  active_ = false;
  // If we were moved to the background meanwhile, SIGTTOU would stop us on
  // the way out; blocked, tcsetattr() just succeeds.
  sigset_t ttou, old;
  sigemptyset(&ttou);
  sigaddset(&ttou, SIGTTOU);
  ::sigprocmask(SIG_BLOCK, &ttou, &old);
  SetAttr(fd_, saved_);
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
}

bool GetWindowSize(int fd, uint32_t* rows, uint32_t* cols) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) != 0) return false;
  *rows = ws.ws_row;
  *cols = ws.ws_col;
  return true;
}

}  // namespace mproxy::shim
