// Child: posix_spawn (tests may run threads), non-blocking pipes and a poll
// loop; FindProcesses reads /proc/*/cmdline.
#include "tests/e2e/child.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <thread>

#include "tests/e2e/e2e_util.h"

extern char** environ;

namespace mproxy::e2e {
namespace {

using Clock = std::chrono::steady_clock;

void MakePipeOrFail(int fds[2]) { REQUIRE(pipe2(fds, O_CLOEXEC) == 0); }

void SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  REQUIRE(flags >= 0);
  REQUIRE(fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0);
}

void CloseFd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

// Writing to a child that has gone away must be EPIPE, not a dead test.
void IgnoreSigpipeOnce() {
  static const bool done = [] {
    std::signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)done;
}

}  // namespace

std::string Outcome::Describe() const {
  if (!finished) return "still running after the deadline";
  if (WIFEXITED(wait_status)) return "exit " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return "killed by signal " + std::to_string(WTERMSIG(wait_status));
  return "wait status " + std::to_string(wait_status);
}

std::unique_ptr<Child> Child::Spawn(const Options& options) {
  IgnoreSigpipeOnce();
  REQUIRE(!options.argv.empty());
  std::unique_ptr<Child> c(new Child());
  int in[2] = {-1, -1}, out[2], err[2];
  if (options.stdin_kind == StdinKind::kPipe) MakePipeOrFail(in);
  MakePipeOrFail(out);
  MakePipeOrFail(err);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (options.stdin_kind == StdinKind::kPipe) {
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  } else {
    posix_spawn_file_actions_addopen(&actions, 0, options.stdin_file.c_str(), O_RDONLY, 0);
  }
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  // Default signal dispositions and mask in the child, whatever the test has.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  std::vector<std::string> env_storage;
  // extra_env replaces variables of the same name.
  auto overridden = [&](std::string_view kv) {
    for (const auto& e : options.extra_env) {
      size_t eq = e.find('=');
      if (kv.substr(0, kv.find('=') + 1) == std::string_view(e).substr(0, eq + 1)) return true;
    }
    return false;
  };
  for (char** e = environ; *e != nullptr; ++e) {
    if (!overridden(*e)) env_storage.emplace_back(*e);
  }
  for (const auto& e : options.extra_env) env_storage.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_storage = options.argv;
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  int rc = posix_spawn(&c->pid_, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  CloseFd(&in[0]);
  CloseFd(&out[1]);
  CloseFd(&err[1]);
  INFO("posix_spawn " << options.argv[0] << ": " << std::strerror(rc));
  REQUIRE(rc == 0);
  c->in_ = in[1];
  c->out_ = out[0];
  c->err_ = err[0];
  if (c->in_ >= 0) SetNonBlocking(c->in_);
  SetNonBlocking(c->out_);
  SetNonBlocking(c->err_);
  return c;
}

Child::~Child() {
  CloseFd(&in_);
  CloseFd(&out_);
  CloseFd(&err_);
  if (pid_ > 0 && !reaped_) {
    kill(pid_, SIGKILL);
    int status;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

void Child::Signal(int signo) {
  REQUIRE(!reaped_);
  REQUIRE(kill(pid_, signo) == 0);
}

std::optional<int> Child::WaitUntil(Clock::time_point deadline) {
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      return status;
    }
    if (r < 0 && errno != EINTR) {
      FAIL("waitpid: " << std::strerror(errno));
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Outcome Child::Pump(const Source& in, const Sink& out, const Sink& err, std::chrono::seconds limit,
                    bool keep_stdin_open) {
  const auto deadline = Clock::now() + limit;
  std::string chunk;
  size_t chunk_off = 0;
  bool in_done = in_ < 0;
  std::string buf(256 * 1024, '\0');
  Outcome outcome;

  while (out_ >= 0 || err_ >= 0) {
    // Refill the pending stdin chunk.
    if (!in_done && chunk_off == chunk.size()) {
      chunk.clear();
      chunk_off = 0;
      if (!in || !in(&chunk)) {
        in_done = true;
        if (!keep_stdin_open) CloseFd(&in_);
      }
    }
    struct pollfd p[3];
    int n = 0;
    int in_idx = -1, out_idx = -1, err_idx = -1;
    if (!in_done && in_ >= 0) {
      in_idx = n;
      p[n++] = {in_, POLLOUT, 0};
    }
    if (out_ >= 0) {
      out_idx = n;
      p[n++] = {out_, POLLIN, 0};
    }
    if (err_ >= 0) {
      err_idx = n;
      p[n++] = {err_, POLLIN, 0};
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    int r = poll(p, n, static_cast<int>(std::min<long>(left.count(), 1000)));
    if (r < 0 && errno == EINTR) continue;
    REQUIRE(r >= 0);
    if (in_idx >= 0 && p[in_idx].revents != 0) {
      ssize_t w = write(in_, chunk.data() + chunk_off, chunk.size() - chunk_off);
      if (w > 0) {
        chunk_off += static_cast<size_t>(w);
      } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        // The child stopped reading (EPIPE): the rest of the input is moot.
        in_done = true;
        CloseFd(&in_);
      }
    }
    for (auto [idx, fd, sink] :
         {std::tuple{out_idx, &out_, &out}, std::tuple{err_idx, &err_, &err}}) {
      if (idx < 0 || p[idx].revents == 0) continue;
      ssize_t got = read(*fd, buf.data(), buf.size());
      if (got > 0) {
        if (*sink) (*sink)(std::string_view(buf.data(), static_cast<size_t>(got)));
      } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
        CloseFd(fd);
      }
    }
  }
  auto status = WaitUntil(deadline);
  CloseFd(&in_);
  if (!status) {
    kill(pid_, SIGKILL);
    (void)WaitUntil(Clock::now() + std::chrono::seconds(10));
    return outcome;
  }
  outcome.finished = true;
  outcome.wait_status = *status;
  return outcome;
}

Child::Result Child::Communicate(std::string input, std::chrono::seconds limit) {
  Result r;
  bool given = false;
  r.outcome = Pump(
      [&](std::string* chunk) {
        if (given) return false;
        given = true;
        *chunk = std::move(input);
        return true;
      },
      [&](std::string_view b) { r.out.append(b); }, [&](std::string_view b) { r.err.append(b); },
      limit);
  return r;
}

Child::Result Run(const std::vector<std::string>& argv, std::chrono::seconds limit) {
  Child::Options o;
  o.argv = argv;
  o.stdin_kind = Child::StdinKind::kFile;
  return Child::Spawn(o)->Communicate("", limit);
}

std::vector<pid_t> FindProcesses(const std::vector<std::string>& argv) {
  std::string want;
  for (const auto& a : argv) {
    want += a;
    want.push_back('\0');
  }
  std::vector<pid_t> found;
  DIR* d = opendir("/proc");
  REQUIRE(d != nullptr);
  while (struct dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    if (ReadFile(std::string("/proc/") + e->d_name + "/cmdline") == want)
      found.push_back(static_cast<pid_t>(pid));
  }
  closedir(d);
  return found;
}

bool WaitForProcess(const std::vector<std::string>& argv, std::chrono::seconds limit) {
  const auto deadline = Clock::now() + limit;
  while (FindProcesses(argv).empty()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

bool WaitForNoProcess(const std::vector<std::string>& argv, std::chrono::seconds limit) {
  const auto deadline = Clock::now() + limit;
  while (!FindProcesses(argv).empty()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace mproxy::e2e
