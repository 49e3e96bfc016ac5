// session_bench: times a command run over and over, one at a time or many at
// once, from inside an mproxy session (where `true` is a stub, so each run is
// stub -> shim -> broker -> agent -> exit) or outside it (the baselines).
// Prints `name value` lines; bench/run_session_bench.sh drives it.
//
//   session_bench seq N CMD [ARGS...]      N runs one after another
//   session_bench alt N A [ARGS...] -- B [ARGS...]
//                                          N runs of each, alternating A, B, A, ...
//                                          so both see the same machine load;
//                                          a_* and b_* figures plus diff_*: the
//                                          per-pair differences A - B
//   session_bench par N P CMD [ARGS...]    N runs, P at a time
//   options before the mode: --warmup W (untimed runs first, default 10)
//
// Every run gets stdin, stdout and stderr on /dev/null (and no other fd) and
// is spawned with posix_spawnp, so CMD is looked up on PATH like a shell would.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

struct Spawner {
  explicit Spawner(char** argv) : argv_(argv) {
    posix_spawn_file_actions_init(&actions_);
    for (int fd = 0; fd < 3; ++fd) {
      posix_spawn_file_actions_addopen(&actions_, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY,
                                       0);
    }
    // Nothing else: an fd inherited from whoever started the benchmark would
    // travel with every shim request and be pumped by the broker.
    posix_spawn_file_actions_addclosefrom_np(&actions_, 3);
  }
  ~Spawner() { posix_spawn_file_actions_destroy(&actions_); }
  Spawner(const Spawner&) = delete;
  Spawner& operator=(const Spawner&) = delete;

  // The child's pid, or -1 (counted as a failure by the caller).
  pid_t Start() {
    pid_t pid = -1;
    int rc = posix_spawnp(&pid, argv_[0], &actions_, nullptr, argv_, environ);
    if (rc != 0) {
      if (first_error_.empty()) first_error_ = std::string("spawn: ") + std::strerror(rc);
      return -1;
    }
    return pid;
  }

  // Records a failure for a wait status other than "exit 0".
  bool Ok(int status) {
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
    if (first_error_.empty()) {
      first_error_ = WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                       : "signal " + std::to_string(WTERMSIG(status));
    }
    return false;
  }

  const std::string& first_error() const { return first_error_; }

 private:
  char** argv_;
  posix_spawn_file_actions_t actions_;
  std::string first_error_;
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// The same rank rule as run_exec_bench.sh's pct().
double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

int WaitFor(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

void PrintLatencies(const std::vector<double>& ms, const std::string& prefix = "") {
  double sum = 0;
  for (double x : ms) sum += x;
  const char* p = prefix.c_str();
  std::printf("%smedian_ms %.3f\n", p, Percentile(ms, 0.5));
  std::printf("%sp90_ms %.3f\n", p, Percentile(ms, 0.9));
  std::printf("%sp99_ms %.3f\n", p, Percentile(ms, 0.99));
  std::printf("%smin_ms %.3f\n", p, ms.empty() ? 0.0 : *std::min_element(ms.begin(), ms.end()));
  std::printf("%smean_ms %.3f\n", p, ms.empty() ? 0.0 : sum / static_cast<double>(ms.size()));
}

void PrintFailures(int failures, const Spawner& s, const std::string& prefix = "") {
  std::printf("%sfailures %d\n", prefix.c_str(), failures);
  if (failures > 0) {
    std::fprintf(stderr, "session_bench: %sfirst failure: %s\n", prefix.c_str(),
                 s.first_error().c_str());
  }
}

// One timed run; false when it failed.
bool TimeOne(Spawner& s, std::vector<double>* ms) {
  auto t0 = Clock::now();
  pid_t pid = s.Start();
  bool ok = pid > 0 && s.Ok(WaitFor(pid));
  ms->push_back(Ms(Clock::now() - t0));
  return ok;
}

void Warm(Spawner& s, int warmup) {
  for (int i = 0; i < warmup; ++i) {
    pid_t pid = s.Start();
    if (pid > 0) WaitFor(pid);
  }
}

int Sequential(Spawner& s, int n, int warmup) {
  Warm(s, warmup);
  std::vector<double> ms;
  ms.reserve(static_cast<size_t>(n));
  int failures = 0;
  for (int i = 0; i < n; ++i) {
    if (!TimeOne(s, &ms)) ++failures;
  }
  PrintLatencies(ms);
  PrintFailures(failures, s);
  return 0;
}

int Alternating(Spawner& a, Spawner& b, int n, int warmup) {
  Warm(a, warmup);
  Warm(b, warmup);
  std::vector<double> a_ms, b_ms, diff;
  int a_failures = 0, b_failures = 0;
  for (int i = 0; i < n; ++i) {
    if (!TimeOne(a, &a_ms)) ++a_failures;
    if (!TimeOne(b, &b_ms)) ++b_failures;
    diff.push_back(a_ms.back() - b_ms.back());
  }
  PrintLatencies(a_ms, "a_");
  PrintFailures(a_failures, a, "a_");
  PrintLatencies(b_ms, "b_");
  PrintFailures(b_failures, b, "b_");
  std::printf("diff_median_ms %.3f\n", Percentile(diff, 0.5));
  std::printf("diff_p90_ms %.3f\n", Percentile(diff, 0.9));
  return 0;
}

int Parallel(Spawner& s, int n, int width, int warmup) {
  Warm(s, warmup);
  std::map<pid_t, Clock::time_point> running;
  std::vector<double> ms;
  ms.reserve(static_cast<size_t>(n));
  int started = 0, failures = 0;
  const auto t0 = Clock::now();
  while (started < n || !running.empty()) {
    while (started < n && static_cast<int>(running.size()) < width) {
      ++started;
      auto at = Clock::now();
      pid_t pid = s.Start();
      if (pid > 0) {
        running[pid] = at;
      } else {
        ++failures;
      }
    }
    if (running.empty()) continue;
    int status = 0;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      std::perror("session_bench: waitpid");
      return 1;
    }
    auto it = running.find(pid);
    if (it == running.end()) continue;
    ms.push_back(Ms(Clock::now() - it->second));
    running.erase(it);
    if (!s.Ok(status)) ++failures;
  }
  const double wall = Ms(Clock::now() - t0);
  PrintLatencies(ms);
  std::printf("wall_ms %.1f\n", wall);
  std::printf("per_s %.1f\n", wall > 0 ? n / (wall / 1000) : 0.0);
  PrintFailures(failures, s);
  return 0;
}

int Usage() {
  std::fprintf(stderr,
               "usage: session_bench [--warmup W] seq N CMD [ARGS...]\n"
               "       session_bench [--warmup W] alt N A [ARGS...] -- B [ARGS...]\n"
               "       session_bench [--warmup W] par N P CMD [ARGS...]\n");
  return 2;
}

int PositiveInt(const char* s) {
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  return (end != s && *end == '\0' && v > 0 && v < 100000000) ? static_cast<int>(v) : -1;
}

}  // namespace

int main(int argc, char** argv) {
  int i = 1;
  int warmup = 10;
  if (i + 1 < argc && std::strcmp(argv[i], "--warmup") == 0) {
    warmup = std::atoi(argv[i + 1]);
    if (warmup < 0) return Usage();
    i += 2;
  }
  if (i + 2 >= argc) return Usage();
  const std::string mode = argv[i];
  const int n = PositiveInt(argv[i + 1]);
  if (n < 0) return Usage();
  if (mode == "seq") {
    Spawner s(argv + i + 2);
    return Sequential(s, n, warmup);
  }
  if (mode == "alt") {
    // Split at "--" in place: A's argv ends where B's begins.
    char** a = argv + i + 2;
    char** sep = a;
    while (*sep != nullptr && std::strcmp(*sep, "--") != 0) ++sep;
    if (*sep == nullptr || sep == a || sep[1] == nullptr) return Usage();
    *sep = nullptr;
    Spawner sa(a);
    Spawner sb(sep + 1);
    return Alternating(sa, sb, n, warmup);
  }
  if (mode == "par" && i + 3 < argc) {
    const int width = PositiveInt(argv[i + 2]);
    if (width < 0) return Usage();
    Spawner s(argv + i + 3);
    return Parallel(s, n, width, warmup);
  }
  return Usage();
}
