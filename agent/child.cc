// vfork-style clone + execve for one Exec, with an error pipe so exec
// failures come back as errno values instead of racing with the child's exit
// status.
#include "agent/child.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>

#include "agent/job_watch.h"
#include "agent/path_query.h"
#include "common/io.h"

extern char** environ;

namespace mproxy::agent {
namespace {

// Largest fd number an Exec may ask for in the child.
constexpr uint32_t kMaxChildFd = 1023;

// What the child reports through the error pipe before it gives up.
enum class Stage : int { kSetsid = 1, kControllingTty, kDup, kChdir, kExec, kFork };

struct ChildReport {
  int stage;
  int err;
};

// Everything the child needs, prepared before fork: after fork only
// async-signal-safe calls are allowed, so no allocation happens there.
struct ChildPlan {
  const char* program = nullptr;
  const char* cwd = nullptr;  // nullptr: stay in the agent's directory
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  int error_fd = -1;
  int ctty_fd = -1;  // pty slave to make the controlling terminal, or -1
  int job_fd = -1;   // with ctty_fd: where the job leader writes JobEvents
  // Signals whose disposition is not SIG_DFL in the agent: the child puts
  // them back to default (an ignored one would stay ignored across exec).
  const std::vector<int>* changed_signals = nullptr;
  // targets[i] in the child becomes a copy of sources[i].
  std::vector<int> targets;
  std::vector<int> sources;
};

// The kernel's struct for rt_sigaction. glibc's sigaction() refuses the two
// signals it keeps for itself (32 and 33), yet a parent may have left them
// ignored, and an ignored signal stays ignored across exec.
struct KernelSigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)();
  uint64_t mask;
};

int KernelSigactionGet(int sig, KernelSigaction* old) {
  return static_cast<int>(syscall(SYS_rt_sigaction, sig, nullptr, old, sizeof old->mask));
}

void SetDefaultDisposition(int sig) {
  KernelSigaction dfl{SIG_DFL, 0, nullptr, 0};
  syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof dfl.mask);
}

[[noreturn]] void ReportAndExit(int error_fd, Stage stage, int err) {
  ChildReport r{static_cast<int>(stage), err};
  ssize_t n;
  do {
    n = write(error_fd, &r, sizeof r);
  } while (n < 0 && errno == EINTR);
  _exit(127);
}

// The fd moves, cwd and execve that end every child's set-up.
[[noreturn]] void ExecPlan(ChildPlan& plan) {
  // Lift every source (and the error pipe) above all target numbers first,
  // so no dup2 below overwrites a source another target still needs.
  int floor = 3;
  for (int t : plan.targets) floor = t + 1 > floor ? t + 1 : floor;
  int moved = fcntl(plan.error_fd, F_DUPFD_CLOEXEC, floor);
  if (moved < 0) ReportAndExit(plan.error_fd, Stage::kDup, errno);
  plan.error_fd = moved;
  for (int& src : plan.sources) {
    int fd = fcntl(src, F_DUPFD_CLOEXEC, floor);
    if (fd < 0) ReportAndExit(plan.error_fd, Stage::kDup, errno);
    src = fd;
  }
  for (size_t i = 0; i < plan.targets.size(); ++i) {
    // dup2 clears close-on-exec on the target; every other fd the agent
    // holds is close-on-exec and disappears at execve.
    if (dup2(plan.sources[i], plan.targets[i]) < 0) {
      ReportAndExit(plan.error_fd, Stage::kDup, errno);
    }
  }
  if (plan.cwd != nullptr && chdir(plan.cwd) < 0) {
    ReportAndExit(plan.error_fd, Stage::kChdir, errno);
  }
  execve(plan.program, plan.argv, plan.envp);
  ReportAndExit(plan.error_fd, Stage::kExec, errno);
}

void UnblockWithDefaults(const ChildPlan& plan) {
  for (int sig : *plan.changed_signals) SetDefaultDisposition(sig);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

// Runs in a child without a terminal between clone and execve: its own
// process group (so signals and the final kill reach everything it starts)
// in the agent's session.
[[noreturn]] void RunChild(ChildPlan& plan) {
  UnblockWithDefaults(plan);
  if (setpgid(0, 0) < 0) ReportAndExit(plan.error_fd, Stage::kSetsid, errno);
  ExecPlan(plan);
}

void WriteEvent(int fd, JobEvent::Kind kind, int value) {
  JobEvent e{kind, value};
  while (write(fd, &e, sizeof e) < 0 && errno == EINTR) {
  }
}

// Every fd but `keep`: the job leader must hold none of the agent's (its
// protocol pipes to sshd) nor the command's (a pty slave held open would
// keep the agent from ever seeing the terminal close).
void CloseAllExcept(int keep) {
  if (syscall(SYS_close_range, 0U, static_cast<unsigned>(keep - 1), 0U) == 0 &&
      syscall(SYS_close_range, static_cast<unsigned>(keep + 1), ~0U, 0U) == 0) {
    return;
  }
  // Before Linux 5.9: every number up to the limit (capped; fds above it
  // would have needed a raised limit the agent never sets).
  struct rlimit lim {};
  int top = 65536;
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < static_cast<rlim_t>(top)) {
    top = static_cast<int>(lim.rlim_cur);
  }
  for (int fd = 0; fd < top; ++fd) {
    if (fd != keep) close(fd);
  }
}

// The command of a pty Exec, forked by its job leader: its own process
// group, in the foreground of the terminal. Signals are still all blocked
// (from SpawnChild), so tcsetpgrp from what is still a background group
// raises no SIGTTOU.
[[noreturn]] void RunJob(ChildPlan& plan) {
  if (setpgid(0, 0) < 0) ReportAndExit(plan.error_fd, Stage::kSetsid, errno);
  if (tcsetpgrp(plan.ctty_fd, getpid()) < 0) {
    ReportAndExit(plan.error_fd, Stage::kControllingTty, errno);
  }
  UnblockWithDefaults(plan);
  ExecPlan(plan);
}

// The job leader of a pty Exec, in a fork of the agent. A command whose
// parent is in another session is in an orphaned process group, where the
// kernel discards terminal stop signals (Ctrl-Z does nothing, as under
// `ssh -t`). So the leader starts a session on the pty, forks the command
// into a process group of its own in the foreground, and waits for it:
// with its parent in its session, Ctrl-Z stops the command, and the leader
// reports that (kStopped) and finally its wait status (kStatus), then exits.
// It keeps every signal blocked: only SIGKILL ends it before the command.
[[noreturn]] void RunJobLeader(ChildPlan& plan) {
  if (setsid() < 0) ReportAndExit(plan.error_fd, Stage::kSetsid, errno);
  if (ioctl(plan.ctty_fd, TIOCSCTTY, 0) < 0) {
    ReportAndExit(plan.error_fd, Stage::kControllingTty, errno);
  }
  pid_t job = fork();
  if (job < 0) ReportAndExit(plan.error_fd, Stage::kFork, errno);
  if (job == 0) RunJob(plan);
  setpgid(job, job);  // the job does it too: whichever runs first
  // Before the error pipe closes, so the agent finds it once exec is known.
  WriteEvent(plan.job_fd, JobEvent::kGroup, job);
  CloseAllExcept(plan.job_fd);
  for (;;) {
    int status = 0;
    pid_t r = waitpid(job, &status, WUNTRACED);
    if (r < 0) {
      if (errno == EINTR) continue;
      _exit(127);  // cannot happen: the job is our child
    }
    if (WIFSTOPPED(status)) {
      WriteEvent(plan.job_fd, JobEvent::kStopped, WSTOPSIG(status));
      continue;
    }
    WriteEvent(plan.job_fd, JobEvent::kStatus, status);
    _exit(0);
  }
}

// Starts RunChild(plan) in a child that shares our memory until it execs or
// exits (CLONE_VM | CLONE_VFORK, what posix_spawn does): no page tables are
// copied and the child faults in nothing, which a fork of the agent paid on
// every command. We are suspended meanwhile, so one stack serves every spawn
// (spawns happen on the loop thread only), and what the child writes into
// `plan` is ours to see. The child has its own copy of the signal handlers
// (no CLONE_SIGHAND); RunChild resets them before it unblocks signals.
//
// AddressSanitizer cannot follow a child onto a stack of our own (it reports
// the stack switch as an overflow), so sanitized builds fork instead.
#if defined(__SANITIZE_ADDRESS__)
#define MPROXY_CHILD_FORKS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MPROXY_CHILD_FORKS 1
#endif
#endif
// A pty Exec gets a job leader instead: a real fork, since the leader lives
// as long as the command (the agent must not stay suspended meanwhile).
pid_t ForkJobLeader(ChildPlan& plan) {
  pid_t pid = fork();
  if (pid == 0) RunJobLeader(plan);
  return pid;
}

pid_t CloneChild(ChildPlan& plan) {
#ifdef MPROXY_CHILD_FORKS
  pid_t pid = fork();
  if (pid == 0) RunChild(plan);
  return pid;
#else
  static constexpr size_t kStackSize = 64 * 1024;
  auto child_main = [](void* p) -> int { RunChild(*static_cast<ChildPlan*>(p)); };
  alignas(64) static char stack[kStackSize];
  return clone(child_main, stack + kStackSize, CLONE_VM | CLONE_VFORK | SIGCHLD, &plan);
#endif
}

// The agent's signals with a disposition other than SIG_DFL, looked up at
// the first spawn. The agent changes dispositions only at start-up (SIGPIPE
// ignored, libuv's SIGCHLD handler), so the answer does not go stale; what it
// inherited ignored (nohup) is in the list too.
const std::vector<int>& ChangedSignals() {
  static const std::vector<int> changed = [] {
    std::vector<int> out;
    for (int sig = 1; sig < NSIG; ++sig) {
      KernelSigaction old{};
      if (sig == SIGKILL || sig == SIGSTOP || KernelSigactionGet(sig, &old) != 0) continue;
      if (old.handler != SIG_DFL) out.push_back(sig);
    }
    return out;
  }();
  return changed;
}

Status SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return Error::FromErrno("fcntl(O_NONBLOCK)", errno);
  }
  return Ok();
}

std::vector<char*> CStrings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const std::string& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// Sets NAME=value in `env`, replacing an existing NAME, or removes NAME when
// `entry` has no '='.
void ApplyEnvEntry(std::vector<std::string>* env, const std::string& entry) {
  size_t eq = entry.find('=');
  std::string_view name = std::string_view(entry).substr(0, eq);
  auto same_name = [name](const std::string& e) {
    return e.size() > name.size() && e[name.size()] == '=' && e.compare(0, name.size(), name) == 0;
  };
  std::erase_if(*env, same_name);
  if (eq != std::string::npos) env->push_back(entry);
}

// The child's environment: exactly the Exec env, or with inherit_env the
// agent's own environment with the Exec entries applied; then TERM from the
// PtySpec when the child has a terminal.
std::vector<std::string> ChildEnv(const proto::Exec& exec, bool has_pty) {
  std::vector<std::string> env;
  if (exec.inherit_env) {
    for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
    for (const std::string& entry : exec.env) ApplyEnvEntry(&env, entry);
  } else {
    env = exec.env;
  }
  if (has_pty && exec.pty && !exec.pty->term.empty()) ApplyEnvEntry(&env, "TERM=" + exec.pty->term);
  return env;
}

const std::string* FindEnv(const std::vector<std::string>& env, std::string_view name) {
  for (const std::string& e : env) {
    if (e.size() > name.size() && e[name.size()] == '=' && e.compare(0, name.size(), name) == 0) {
      return &e;
    }
  }
  return nullptr;
}

struct Pty {
  UniqueFd master;
  UniqueFd slave;
};

Result<Pty> OpenPty(const proto::Exec& exec) {
  Pty pty;
  pty.master.Reset(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!pty.master) return Error::FromErrno("posix_openpt", errno);
  if (grantpt(pty.master.get()) != 0) return Error::FromErrno("grantpt", errno);
  if (unlockpt(pty.master.get()) != 0) return Error::FromErrno("unlockpt", errno);
  char name[128];
  if (int e = ptsname_r(pty.master.get(), name, sizeof name); e != 0) {
    return Error::FromErrno("ptsname_r", e);
  }
  pty.slave.Reset(open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!pty.slave) return Error::FromErrno(std::string("open ") + name, errno);
  uint32_t rows = exec.pty ? exec.pty->rows : 24;
  uint32_t cols = exec.pty ? exec.pty->cols : 80;
  if (auto s = SetWindowSize(pty.master.get(), rows, cols); !s) return s.error();
  if (auto s = SetNonBlocking(pty.master.get()); !s) return s.error();
  return pty;
}

// Checks the fd list of an Exec: numbers in range, each named once.
Status ValidateFds(const proto::Exec& exec) {
  std::set<uint32_t> seen;
  for (const proto::FdSpec& f : exec.fds) {
    if (f.fd > kMaxChildFd) return Error("fd " + std::to_string(f.fd) + " is out of range");
    if (f.direction != proto::FdSpec::kToChild && f.direction != proto::FdSpec::kFromChild) {
      return Error("fd " + std::to_string(f.fd) + " has unknown direction " +
                   std::to_string(f.direction));
    }
    if (!seen.insert(f.fd).second) return Error("fd " + std::to_string(f.fd) + " named twice");
  }
  return Ok();
}

// Blocks every signal for the fork, so no handler of the agent's (libuv's
// signal pipe) runs in the child before it resets them; restores on scope exit.
class SignalBlock {
 public:
  SignalBlock() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old_);
  }
  ~SignalBlock() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  SignalBlock(const SignalBlock&) = delete;
  SignalBlock& operator=(const SignalBlock&) = delete;

 private:
  sigset_t old_;
};

// waitpid(pid) to the end: a child that failed is never left a zombie.
void ReapNow(pid_t pid) {
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

SpawnFailure FailureFromReport(const ChildReport& r, const std::string& program,
                               const std::string& cwd) {
  SpawnFailure f;
  std::string why = std::strerror(r.err);
  switch (static_cast<Stage>(r.stage)) {
    case Stage::kChdir:
      f.error = "cwd " + cwd + ": " + why;
      break;
    case Stage::kExec:
      f.code = r.err == ENOENT ? 127 : 126;
      f.error = program + ": " + why;
      break;
    case Stage::kSetsid:
      f.code = 126;
      f.error = "new process group: " + why;
      break;
    case Stage::kControllingTty:
      f.code = 126;
      f.error = "controlling terminal: " + why;
      break;
    case Stage::kFork:
      f.code = 126;
      f.error = "fork: " + why;
      break;
    default:
      f.code = 126;
      f.error = "setting up fds: " + why;
      break;
  }
  return f;
}

}  // namespace

Status SetWindowSize(int pty_master, uint32_t rows, uint32_t cols) {
  struct winsize ws {};
  ws.ws_row = static_cast<unsigned short>(rows > 0xffff ? 0xffff : rows);
  ws.ws_col = static_cast<unsigned short>(cols > 0xffff ? 0xffff : cols);
  if (ioctl(pty_master, TIOCSWINSZ, &ws) < 0) return Error::FromErrno("TIOCSWINSZ", errno);
  return Ok();
}

Result<ChildProcess> SpawnChild(const proto::Exec& exec, const std::string& fallback_path,
                                SpawnFailure* failure) {
  auto fail = [failure](int32_t code, std::string text) -> Error {
    failure->code = code;
    failure->error = std::move(text);
    return Error(failure->error);
  };
  if (auto s = ValidateFds(exec); !s) return fail(126, "invalid Exec: " + s.error().message());

  std::string program = exec.path.empty() && !exec.argv.empty() ? exec.argv[0] : exec.path;
  if (program.empty()) return fail(127, "empty command name");
  if (!exec.cwd.empty()) {
    struct stat st {};
    if (stat(exec.cwd.c_str(), &st) != 0) {
      return fail(127, "cwd " + exec.cwd + ": " + std::strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) return fail(127, "cwd " + exec.cwd + ": " + std::strerror(ENOTDIR));
  }
  bool wants_pty = exec.pty.has_value();
  for (const auto& f : exec.fds) wants_pty = wants_pty || f.tty;
  std::vector<std::string> env = ChildEnv(exec, wants_pty);
  if (program.find('/') == std::string::npos) {
    const std::string* path_entry = FindEnv(env, "PATH");
    std::string_view path_value =
        path_entry != nullptr ? std::string_view(*path_entry).substr(5) : fallback_path;
    std::string found = FindExecutable(program, path_value, exec.cwd);
    if (found.empty()) return fail(127, program + ": command not found");
    program = std::move(found);
  }

  ChildProcess child;
  ChildPlan plan;
  std::vector<UniqueFd> child_ends;  // closed in the parent after fork
  Pty pty;
  if (wants_pty) {
    auto opened = OpenPty(exec);
    if (!opened) return fail(126, "pty: " + opened.error().message());
    pty = std::move(*opened);
    plan.ctty_fd = pty.slave.get();
  }
  plan.changed_signals = &ChangedSignals();
  bool std_named[3] = {false, false, false};
  for (const proto::FdSpec& f : exec.fds) {
    if (f.fd < 3) std_named[f.fd] = true;
    plan.targets.push_back(static_cast<int>(f.fd));
    if (f.tty) {
      plan.sources.push_back(pty.slave.get());
      (f.direction == proto::FdSpec::kFromChild ? child.tty_out : child.tty_in).push_back(f.fd);
      continue;
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return fail(126, Error::FromErrno("pipe2", errno).message());
    UniqueFd read_end(p[0]), write_end(p[1]);
    bool to_child = f.direction == proto::FdSpec::kToChild;
    ChildPipe cp;
    cp.fd = f.fd;
    cp.direction = f.direction;
    cp.parent_end = std::move(to_child ? write_end : read_end);
    if (auto s = SetNonBlocking(cp.parent_end.get()); !s) return fail(126, s.error().message());
    child_ends.push_back(std::move(to_child ? read_end : write_end));
    plan.sources.push_back(child_ends.back().get());
    child.pipes.push_back(std::move(cp));
  }
  // The agent's own stdio is the protocol stream: a child never inherits it.
  UniqueFd dev_null;
  for (int fd = 0; fd < 3; ++fd) {
    if (std_named[fd]) continue;
    if (!dev_null) {
      dev_null.Reset(open("/dev/null", O_RDWR | O_CLOEXEC));
      if (!dev_null) return fail(126, Error::FromErrno("open /dev/null", errno).message());
    }
    plan.targets.push_back(fd);
    plan.sources.push_back(dev_null.get());
  }

  std::vector<std::string> argv = exec.argv;
  if (argv.empty()) argv.push_back(program);
  std::vector<char*> argv_c = CStrings(argv);
  std::vector<char*> env_c = CStrings(env);
  plan.program = program.c_str();
  plan.cwd = exec.cwd.empty() ? nullptr : exec.cwd.c_str();
  plan.argv = argv_c.data();
  plan.envp = env_c.data();

  int ep[2];
  if (pipe2(ep, O_CLOEXEC) != 0) return fail(126, Error::FromErrno("pipe2", errno).message());
  UniqueFd error_read(ep[0]), error_write(ep[1]);
  plan.error_fd = error_write.get();
  UniqueFd job_read, job_write;
  if (wants_pty) {
    int jp[2];
    if (pipe2(jp, O_CLOEXEC) != 0) return fail(126, Error::FromErrno("pipe2", errno).message());
    job_read.Reset(jp[0]);
    job_write.Reset(jp[1]);
    plan.job_fd = jp[1];
  }

  pid_t pid;
  {
    SignalBlock block;
    pid = wants_pty ? ForkJobLeader(plan) : CloneChild(plan);
  }
  if (pid < 0) return fail(126, Error::FromErrno(wants_pty ? "fork" : "clone", errno).message());
  error_write.Reset();
  job_write.Reset();
  child_ends.clear();
  pty.slave.Reset();

  // EOF without a report means execve succeeded (the pipe was close-on-exec).
  ChildReport report{};
  if (ReadExact(error_read.get(), &report, sizeof report).ok()) {
    ReapNow(pid);
    *failure = FailureFromReport(report, program, exec.cwd);
    return Error(failure->error);
  }
  child.pid = pid;
  child.group = pid;
  if (wants_pty) {
    // The leader wrote the command's pid before the error pipe closed.
    JobEvent e{};
    if (!ReadExact(job_read.get(), &e, sizeof e).ok() || e.kind != JobEvent::kGroup ||
        e.value <= 0) {
      kill(pid, SIGKILL);
      ReapNow(pid);
      return fail(126, "the pty job leader did not report the command's pid");
    }
    child.group = e.value;
    if (auto s = SetNonBlocking(job_read.get()); !s) return fail(126, s.error().message());
    child.job_events = std::move(job_read);
  }
  child.pty_master = std::move(pty.master);
  return child;
}

}  // namespace mproxy::agent
