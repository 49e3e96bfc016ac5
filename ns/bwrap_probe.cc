// Locates bwrap and checks it can build the session's namespace here.
#include "ns/bwrap_probe.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <vector>

#include "common/io.h"
#include "ns/bwrap_command.h"

extern char** environ;

namespace mproxy::ns {
namespace {

constexpr int kProbeTimeoutMs = 10'000;
constexpr size_t kMaxReasonBytes = 300;

Error Unusable(const std::string& what) {
  return Error("bubblewrap: " + what + "; " + std::string(kWithoutBwrap));
}

// The first executable regular file named `name` in `search_path`. Empty
// elements (the current directory) are skipped on purpose.
std::string SearchPath(std::string_view search_path, const std::string& name) {
  size_t i = 0;
  while (i <= search_path.size()) {
    size_t end = search_path.find(':', i);
    if (end == std::string_view::npos) end = search_path.size();
    std::string_view dir = search_path.substr(i, end - i);
    if (!dir.empty() && dir[0] == '/') {
      std::string candidate = std::string(dir) + "/" + name;
      struct stat st {};
      if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
          access(candidate.c_str(), X_OK) == 0) {
        return candidate;
      }
    }
    i = end + 1;
  }
  return "";
}

// Up to the first line of bwrap's complaint, trimmed.
std::string FirstLine(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  if (line.size() > kMaxReasonBytes) line.resize(kMaxReasonBytes);
  return line;
}

// Runs argv with stdin/stdout on /dev/null and stderr captured. Returns the
// wait status and what it wrote to stderr.
Result<std::pair<int, std::string>> RunProbe(const std::vector<std::string>& args) {
  auto pipe = MakePipe();
  if (!pipe.ok()) return pipe.error();
  auto& [read_end, write_end] = *pipe;

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 2);
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  write_end.Reset();
  if (rc != 0) return Error::FromErrno("cannot start " + args[0], rc);

  std::string err;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kProbeTimeoutMs);
  bool timed_out = false;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{read_end.get(), POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      timed_out = n == 0;
      break;
    }
    char buf[512];
    auto got = ReadSome(read_end.get(), buf, sizeof buf);
    if (!got.ok() || *got == 0) break;
    if (err.size() < 4096) err.append(buf, *got);
  }
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return Error(args[0] + " did not finish within " + std::to_string(kProbeTimeoutMs / 1000) +
                 " s");
  }
  return std::make_pair(status, std::move(err));
}

}  // namespace

bool NeedUserNamespace() { return geteuid() != 0; }

Result<std::string> FindUsableBwrap() {
  const char* path = std::getenv("PATH");
  return FindUsableBwrap(path ? path : std::string(kFallbackPath), NeedUserNamespace());
}

Result<std::string> FindUsableBwrap(std::string_view search_path, bool unshare_user) {
  std::string bwrap = SearchPath(search_path, "bwrap");
  if (bwrap.empty()) {
    return Unusable("'bwrap' not found in PATH (install the package bubblewrap)");
  }
  NamespaceSpec spec;
  spec.bwrap_path = bwrap;
  spec.unshare_user = unshare_user;
  spec.cwd = "/";
  spec.program = {"true"};
  auto run = RunProbe(BuildBwrapArgv(spec));
  if (!run.ok()) return Unusable(run.error().message());
  auto [status, err] = std::move(run).value();
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return bwrap;
  std::string how = WIFSIGNALED(status) ? "was killed by signal " + std::to_string(WTERMSIG(status))
                                        : "exited " + std::to_string(WEXITSTATUS(status));
  std::string said = FirstLine(err);
  return Unusable(bwrap + " cannot create a namespace here (" + how + ")" +
                  (said.empty() ? "" : ": " + said));
}

}  // namespace mproxy::ns
