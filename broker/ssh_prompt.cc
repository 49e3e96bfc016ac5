// Terminal prompts for passwords, passphrases and keyboard-interactive auth.
#include "broker/ssh_prompt.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>

#include "common/io.h"
#include "common/unique_fd.h"

namespace mproxy::broker {

bool HaveTerminal() {
  UniqueFd tty(::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC));
  return tty.valid();
}

Result<std::string> PromptOnTerminal(const std::string& prompt, bool echo) {
  UniqueFd tty(::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!tty) return Error::FromErrno("no terminal to ask on: /dev/tty", errno);
  termios saved{};
  bool restore = false;
  if (!echo && tcgetattr(tty.get(), &saved) == 0) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    restore = tcsetattr(tty.get(), TCSAFLUSH, &quiet) == 0;
  }
  (void)WriteAll(tty.get(), prompt);
  std::string line;
  Status status = Ok();
  for (;;) {
    char c;
    auto n = ReadSome(tty.get(), &c, 1);  // one byte: never read past the line
    if (!n.ok()) {
      status = n.error();
      break;
    }
    if (*n == 0 || c == '\n' || c == '\r') break;
    line.push_back(c);
  }
  if (restore) tcsetattr(tty.get(), TCSAFLUSH, &saved);
  if (!status.ok()) return status.error();
  return line;
}

}  // namespace mproxy::broker
