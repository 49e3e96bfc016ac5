// Which of the shim's open fds the remote command gets, and how: terminals
// among 0-2 stay with the shim, everything else travels to the broker.
#pragma once

#include <string>
#include <vector>

#include "proto/shim_wire.h"

namespace mproxy::shim {

struct OpenFds {
  // Ascending, as the Request lists them.
  std::vector<proto::shim::Fd> fds;
  // The kPassed fds of `fds`, in the same order: what SCM_RIGHTS carries.
  std::vector<int> passed;
  // The first of 0, 1, 2 that is a terminal, or -1.
  int first_terminal = -1;
  bool stdin_terminal = false;
  // fd 1 is a pipe or a socket: the command feeds another process (`cmd |
  // less`), which may read the terminal itself.
  bool stdout_to_process = false;
  // Passed fds left out because of kMaxPassedFds.
  size_t dropped = 0;
};

// Looks at the fds this process has open right now. 0, 1 and 2 are listed
// when open, terminal or not; fds >= 3 when they can carry bytes (not a
// directory, an O_PATH handle, or an anonymous inode such as an epoll fd or
// eventfd), read-only ones as input to the command and the rest as output.
// A read-only pipe or socket >= 3 is listed only when `argv` names it
// (/dev/fd/N or /proc/self/fd/N, as `<(...)` does): the broker reads an
// input fd eagerly, and such fds are often inherited by accident (bash
// leaves the first `<(...)`'s read end in the second one; make's jobserver),
// where reading would steal bytes meant for another process.
// Enumerates /proc/self/fd, or probes with fcntl when /proc is missing.
OpenFds CollectOpenFds(const std::vector<std::string>& argv);

}  // namespace mproxy::shim
