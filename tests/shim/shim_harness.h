// What the shim tests stand on: a fake broker listening on a unix socket in
// a temporary directory, and the real mproxy-shim started under a command's
// name with chosen fds, environment and working directory. Every wait has a
// timeout, so a broken shim fails a test instead of hanging it.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "proto/shim_wire.h"
#include "tests/support/temp_dir.h"

namespace mproxy::testing {

// Generous: only reached when something is broken.
inline constexpr int kTimeoutMs = 10000;


// One shim connection as the broker sees it. Owned by the test.
struct ShimConnection {
  UniqueFd sock;
  proto::shim::Request request;
  std::vector<UniqueFd> fds;  // the passed fds, in request order
  proto::shim::Decoder decoder;

  // The next frame from the shim, or nullopt after kTimeoutMs or at EOF.
  std::optional<proto::shim::Message> Next(int timeout_ms = kTimeoutMs);
  void Send(const proto::shim::Message& m);
  // The passed fd the request lists as `fd`, or -1.
  int Passed(uint32_t fd) const;
};

// Listens at `<dir>/broker.sock`. Owned by the test; single-threaded.
class FakeBroker {
 public:
  explicit FakeBroker(const std::string& dir);
  const std::string& socket_path() const { return path_; }
  // Accepts one shim and reads its Request and fds; fails the test when
  // none arrives within the timeout.
  ShimConnection Accept();

 private:
  std::string path_;
  UniqueFd listener_;
};

// How to start the shim.
struct ShimLaunch {
  std::string program;  // the path to execute: a symlink named like a command
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string cwd;  // empty: the test's
  // The child's fds: child fd -> the test's fd. Every other fd is closed.
  std::map<int, int> fds;
  bool controlling_terminal = false;  // setsid() and make fd 0 the ctty
  // With controlling_terminal: the child is a tiny job-control shell that
  // forks the shim into its own process group in the terminal's foreground
  // (so the shim's group is not orphaned and SIGTSTP can stop it), stops
  // itself (SIGSTOP) whenever the shim stops and continues it when
  // continued, and ends as the shim did.
  bool job_shell = false;
  std::vector<int> ignored_signals;   // SIG_IGN in the child, as nohup does
};

// Forks and execs; the child's signals start at their defaults (but for
// `ignored_signals`), unblocked.
pid_t StartShim(const ShimLaunch& launch);

// waitpid() with a timeout; kills the child and fails the test on timeout.
// With `stopped`, also returns when the child stops.
int WaitShim(pid_t pid, bool stopped = false);

// Reads `fd` until EOF (kTimeoutMs at most).
std::string ReadAll(int fd);
// Reads what arrives on `fd` until it contains `want` or the timeout ends.
std::string ReadUntil(int fd, const std::string& want);

// The shim binary under test, and a symlink to it named `name` in `dir`.
std::string ShimBinary();
std::string LinkCommand(const std::string& dir, const std::string& name);

}  // namespace mproxy::testing
