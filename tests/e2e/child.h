// A local child process for end-to-end tests: spawned with its stdin, stdout
// and stderr on pipes, pumped with poll(2) so gigabytes can stream through
// without being held in memory, and always reaped (killed on an anti-hang
// deadline or when the Child is destroyed).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mproxy::e2e {

// How a child ended, as a user reads it: "exit 0", "exit 130",
// "killed by signal 9", or "still running after the deadline".
struct Outcome {
  bool finished = false;
  int wait_status = 0;
  std::string Describe() const;
};

// Bytes to feed the child's stdin, pulled in chunks. Returns false when there
// is nothing more (stdin is then closed).
using Source = std::function<bool(std::string* chunk)>;
// Receives the child's output as it arrives.
using Sink = std::function<void(std::string_view bytes)>;

// Owned by one test; not thread-safe.
class Child {
 public:
  // What the child gets as stdin: a pipe this object writes (kPipe), or the
  // given file opened read-only (kFile, e.g. /dev/null or /dev/zero).
  enum class StdinKind { kPipe, kFile };
  struct Options {
    std::vector<std::string> argv;
    StdinKind stdin_kind = StdinKind::kPipe;
    std::string stdin_file = "/dev/null";
    std::vector<std::string> extra_env;  // "NAME=value", replacing ours
  };

  // Spawns the child; REQUIREs (fails the test) when that is impossible.
  static std::unique_ptr<Child> Spawn(const Options& options);
  ~Child();  // SIGKILLs and reaps the child if it still runs
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  void Signal(int signo);

  // Feeds `in` (when stdin is a pipe; the pipe is closed once `in` is done
  // unless keep_stdin_open), drains stdout and stderr into the sinks until
  // both reach EOF, then waits for the exit. At `limit` the child is
  // SIGKILLed and the Outcome says it did not finish.
  Outcome Pump(const Source& in, const Sink& out, const Sink& err, std::chrono::seconds limit,
               bool keep_stdin_open = false);

  // Pump with a fixed input, collecting both outputs.
  struct Result {
    Outcome outcome;
    std::string out;
    std::string err;
    std::string Status() const { return outcome.Describe(); }
  };
  Result Communicate(std::string input, std::chrono::seconds limit);

 private:
  Child() = default;
  std::optional<int> WaitUntil(std::chrono::steady_clock::time_point deadline);

  pid_t pid_ = -1;
  bool reaped_ = false;
  int in_ = -1;
  int out_ = -1;
  int err_ = -1;
};

// Runs `argv` with stdin from /dev/null and collects everything.
Child::Result Run(const std::vector<std::string>& argv, std::chrono::seconds limit);

// Pids of local processes whose argv is exactly `argv`. Remote commands of
// the fixture's sshd run on this kernel, so they show up here too.
std::vector<pid_t> FindProcesses(const std::vector<std::string>& argv);

// Polls FindProcesses until it is non-empty (true) or `limit` passes.
bool WaitForProcess(const std::vector<std::string>& argv, std::chrono::seconds limit);
// Polls FindProcesses until it is empty (true) or `limit` passes.
bool WaitForNoProcess(const std::vector<std::string>& argv, std::chrono::seconds limit);

}  // namespace mproxy::e2e
