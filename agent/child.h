// Starting one Exec's child: PATH lookup, pipes or a pty for the requested
// fds, a new session (process group), cwd, exact argv and env. No libuv here:
// the caller pumps the returned fds.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "proto/messages.h"

namespace mproxy::agent {

// One parent-side end of a child's pipe, for protocol stream `fd`.
struct ChildPipe {
  uint32_t fd = 0;                                 // the fd number in the child
  uint32_t direction = proto::FdSpec::kFromChild;  // as in FdSpec
  UniqueFd parent_end;                             // nonblocking, close-on-exec
};

// A started child. Owned by the session's channel.
struct ChildProcess {
  // The process to reap: the command itself, or with a pty its job leader
  // (a session leader that waits for it; see child.cc).
  pid_t pid = -1;
  // The command's pid and process group: where signals go.
  pid_t group = -1;
  // With a pty: the job leader's reports (JobEvent, agent/job_watch.h),
  // nonblocking, close-on-exec; the kGroup event has been read.
  UniqueFd job_events;
  std::vector<ChildPipe> pipes;
  // The pty master when the child has a terminal (nonblocking, cloexec).
  UniqueFd pty_master;
  // Streams the pty serves: output goes to the first of tty_out (the others
  // only get an Eof), input may arrive on any of tty_in.
  std::vector<uint32_t> tty_out;
  std::vector<uint32_t> tty_in;
};

// Why a child could not be started, shaped for an Exit message.
struct SpawnFailure {
  int32_t code = 127;  // 127: not found or no cwd, 126: found but not runnable
  std::string error;   // "foo: command not found", "cwd /x: No such file ..."
};

// Starts `exec` and returns once the child has either called execve
// successfully or reported why it could not (through a close-on-exec pipe,
// so a command that started is never reported as a failure). A child that
// failed has already been reaped. `fallback_path` is searched when the Exec
// env has no PATH.
//
// Blocks the calling thread only for the fork-to-exec interval.
Result<ChildProcess> SpawnChild(const proto::Exec& exec, const std::string& fallback_path,
                                SpawnFailure* failure);

// Applies a window size to a pty master.
Status SetWindowSize(int pty_master, uint32_t rows, uint32_t cols);

}  // namespace mproxy::agent
