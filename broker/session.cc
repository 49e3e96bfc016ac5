// RunSession: remote PATH -> stub directory -> shim socket -> entrypoint.
#include "broker/session.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "broker/connect.h"
#include "broker/logging.h"
#include "broker/remote_commands.h"
#include "broker/runtime_dir.h"
#include "broker/session_policy.h"
#include "broker/shim_command.h"
#include "broker/shim_listener.h"
#include "broker/workspaces.h"
#include "fuse/session.h"
#include "fuse/stub_dir.h"
#include "ns/bwrap_command.h"
#include "ns/bwrap_probe.h"

extern char** environ;

namespace mproxy::broker {
namespace {

namespace fs = std::filesystem;

// How long a lookup miss in the stub dir waits for a new enumeration.
constexpr std::chrono::milliseconds kRefreshTimeout{3000};
// Waits between attempts to connect again after the connection was lost:
// 1, 2, 4, ... seconds, then every kMaxRetryDelay.
constexpr uint64_t kFirstRetryDelayMs = 1000;
constexpr uint64_t kMaxRetryDelayMs = 30000;

// Connection attempts whose thread has not finished.
std::atomic<int> g_connects_in_flight{0};

void PrintError(const std::string& line) { std::fprintf(stderr, "mproxy: %s\n", line.c_str()); }

}  // namespace

std::string ResolveLocalProgram(const std::string& program) {
  if (program.find('/') != std::string::npos) {
    return access(program.c_str(), X_OK) == 0 ? program : std::string();
  }
  const char* path = getenv("PATH");
  std::string_view rest = path != nullptr ? path : std::string_view(ns::kFallbackPath);
  while (true) {
    size_t colon = rest.find(':');
    std::string dir(rest.substr(0, colon));
    std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
    struct stat st {};
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    if (colon == std::string_view::npos) return {};
    rest.remove_prefix(colon + 1);
  }
}

namespace {

// The first line of a script ("#!..."), or empty.
std::string FirstLine(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buf[256];
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  if (n < 2 || buf[0] != '#' || buf[1] != '!') return {};
  std::string line(buf, static_cast<size_t>(n));
  return line.substr(0, line.find('\n'));
}

// Without FUSE: a plain directory of symlinks to the shim. PATH lookups work
// the same; commands that appear remotely later need a new session.
Status FillLinkDir(const std::string& dir, const std::string& shim,
                   const std::vector<std::string>& names) {
  for (const auto& name : names) {
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) continue;
    std::string link = dir + "/" + name;
    if (symlink(shim.c_str(), link.c_str()) != 0 && errno != EEXIST) {
      return Error::FromErrno("symlink " + link, errno);
    }
  }
  return Ok();
}

std::vector<std::string> CurrentEnv() {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  return env;
}

void CloseOnExecExcept(const std::set<int>& keep) {
  for (int fd : OpenFds()) {
    if (fd <= 2 || keep.count(fd)) continue;
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0 && !(flags & FD_CLOEXEC)) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
  }
}

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// One session on the loop thread; lives on RunSession's stack.
class Session {
 public:
  Session(uv_loop_t* loop, AgentLink* link, const SessionOptions& o)
      : loop_(loop), link_(link), first_link_(link), o_(o), log_(Log("session")) {}
  int Run();

 private:
  Status Prepare();
  Status MountStubDir();
  Status MountWorkspaces();
  std::string Workdir() const;
  Status Spawn();
  void OnShimConnection(UniqueFd fd);
  void CommandDone(ShimCommand* cmd);
  void Teardown();

  // Reconnecting: a lost link is replaced by a new connection made the way
  // the first one was (on the thread pool: Connect blocks), while the
  // program goes on; until then remote commands and file operations fail.
  struct ConnectJob;
  void WatchLink(AgentLink* link);
  static void OnConnectDone(uv_async_t* h) noexcept;
  static void CloseAsync(ConnectJob* job);
  void OnLinkLost(const Status& why);
  void ConnectAgain();
  void OnConnected(Result<Connection> conn);
  void RetryLater(const std::string& why);
  void Adopt(AgentLink* link);
  static void OnRetryTimer(uv_timer_t* t) noexcept;
  static void OnChildExit(uv_process_t* p, int64_t status, int signal) noexcept;
  static void OnSignal(uv_signal_t* h, int signum) noexcept;
  pid_t ProgramPid();
  static void OnReap(uv_idle_t* h) noexcept;

  uv_loop_t* loop_;
  AgentLink* link_;        // the current link
  AgentLink* first_link_;  // main's
  const SessionOptions& o_;
  std::shared_ptr<spdlog::logger> log_;

  std::string program_path_;
  std::unique_ptr<RemoteCommands> commands_;
  std::unique_ptr<RuntimeDir> dir_;
  std::string shim_path_;
  std::unique_ptr<fuse::StubDir> stub_;
  Result<std::string> bwrap_{Error("not looked for")};
  std::unique_ptr<Workspaces> workspaces_;
  std::unique_ptr<ShimListener> listener_;
  SessionContext ctx_;
  std::list<std::unique_ptr<ShimCommand>> running_;
  std::vector<ShimCommand*> finished_;
  uv_idle_t* reaper_ = nullptr;
  uv_process_t* child_ = nullptr;  // the program, or bwrap running it
  // bwrap's --info-fd report, read when a signal is to be passed on.
  UniqueFd bwrap_info_;
  std::string bwrap_info_text_;
  pid_t program_pid_ = 0;  // known once the report has been read
  std::vector<uv_signal_t*> signals_;
  bool child_running_ = false;
  int exit_status_ = 255;
  bool lost_ = false;

  struct Reconnected {
    std::unique_ptr<Transport> transport;  // declared first: outlives the link
    std::unique_ptr<AgentLink> link;
  };
  std::vector<Reconnected> reconnected_;  // kept until the end: old commands point at them
  std::shared_ptr<ConnectJob> connecting_;  // a connection attempt in flight
  uv_timer_t* retry_timer_ = nullptr;
  uint64_t retry_delay_ms_ = kFirstRetryDelayMs;
  std::string last_retry_error_;
};

// One connection attempt, shared by the loop and the thread making it.
struct Session::ConnectJob {
  ConnectOptions options;
  std::mutex mu;  // guards the fields below
  uv_async_t* async = nullptr;  // closed by the loop; nullptr then
  bool done = false;
  Result<Connection> result{Error("not run")};
};

int Session::Run() {
  program_path_ = ResolveLocalProgram(o_.program[0]);
  if (program_path_.empty()) {
    PrintError(o_.program[0] + ": command not found");
    return 127;
  }
  if (auto s = Prepare(); !s) {
    PrintError(s.error().message());
    Teardown();
    return 255;
  }
  uv_run(loop_, UV_RUN_DEFAULT);  // until the program exits (OnChildExit stops the loop)
  Teardown();
  return exit_status_;
}

Status Session::Prepare() {
  std::vector<std::string> keep_local = EntrypointLocalNames(program_path_, FirstLine(program_path_));
  // `bwrap` runs the program, so it must stay local whatever its name.
  keep_local.push_back("bwrap");
  commands_ = std::make_unique<RemoteCommands>(loop_, link_, o_.config.local, keep_local);
  Status listed = Error("the agent did not answer");
  commands_->Query([&](Status s) {
    listed = std::move(s);
    uv_stop(loop_);
  });
  uv_run(loop_, UV_RUN_DEFAULT);
  if (!listed) return listed;
  log_->info("{} remote commands, {} kept local", commands_->Names().size(), keep_local.size());

  auto dir = RuntimeDir::Create();
  if (!dir) return dir.error();
  dir_ = std::move(*dir);
  auto shim = FindCompanion("mproxy-shim", "MPROXY_SHIM_PATH", "shim");
  if (!shim) return shim.error();
  shim_path_ = *shim;
  if (auto s = MountStubDir(); !s) return s;
  bwrap_ = ns::FindUsableBwrap();
  ctx_.mounts = o_.config.mounts;
  if (auto s = MountWorkspaces(); !s) return s;

  ctx_.link = link_;
  ctx_.host_label = o_.host_label;
  ctx_.env_policy = {o_.config.env_keep, o_.config.env_remove, dir_->stub_dir()};
  ctx_.remote_home = commands_->home();
  ctx_.stub_dir = dir_->stub_dir();

  auto listener = ShimListener::Listen(loop_, dir_->socket_path(),
                                       [this](UniqueFd fd) { OnShimConnection(std::move(fd)); });
  if (!listener) return listener.error();
  listener_ = std::move(*listener);
  reaper_ = new uv_idle_t;
  uv_idle_init(loop_, reaper_);
  reaper_->data = this;
  retry_timer_ = new uv_timer_t;
  uv_timer_init(loop_, retry_timer_);
  retry_timer_->data = this;
  if (auto s = Spawn(); !s) return s;
  WatchLink(link_);
  return Ok();
}

Status Session::MountStubDir() {
  fuse::StubDirOptions so;
  so.mountpoint = dir_->stub_dir();
  so.shim_path = shim_path_;
  so.names = commands_->Names();
  RemoteCommands* commands = commands_.get();
  so.refresh = [commands]() { return commands->RefreshBlocking(kRefreshTimeout); };
  so.logger = Log("fuse");
  auto stub = fuse::StubDir::Mount(std::move(so));
  if (stub) {
    stub_ = std::move(*stub);
    return Ok();
  }
  PrintError("the path-stub directory needs FUSE (" + stub.error().message() +
             "); using a directory of links instead: commands that appear on " + o_.host_label +
             " later need a new session");
  return FillLinkDir(dir_->stub_dir(), shim_path_, commands_->Names());
}

std::string Session::Workdir() const {
  std::error_code ec;
  fs::path dir = o_.workdir.empty() ? fs::current_path(ec) : fs::absolute(o_.workdir, ec);
  std::string s = dir.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

// The working directory shows the remote directory of the same path (unless
// a -v mapping covers it already, it is "/", or the user said not to), and
// every -v mapping shows its remote side.
Status Session::MountWorkspaces() {
  std::vector<Mount> mappings;
  for (Mount m : o_.config.mounts) {
    m.remote = ResolveRemoteHome(m.remote, commands_->home());
    mappings.push_back(std::move(m));
  }
  std::optional<size_t> cwd_mapping;  // the working directory's, when added here
  if (o_.config.workspace_mount) {
    std::string dir = Workdir();
    bool covered = std::any_of(mappings.begin(), mappings.end(),
                               [&](const Mount& m) { return IsUnder(dir, m.local); });
    if (dir == "/") {
      log_->info("the working directory is /: no workspace mounted (use -w or -v)");
    } else if (!covered && !IsUnder(dir, dir_->path())) {
      // No cwd mapping needed: a path no mapping covers is the same remotely.
      cwd_mapping = mappings.size();
      mappings.push_back({dir, dir});
    }
  }
  if (mappings.empty()) return Ok();
  if (!bwrap_) {
    PrintError("workspace mounts need bwrap (" + bwrap_.error().message() +
               "); the program sees the local directories instead");
    return Ok();
  }
  WorkspaceIdentity who;
  who.owner_local = o_.config.workspace_owner_local;
  who.xattrs_all = o_.config.workspace_xattrs_all;
  who.remote_ids_known = commands_->uid().has_value() && commands_->gid().has_value();
  who.remote_uid = commands_->uid().value_or(0);
  who.remote_gid = commands_->gid().value_or(0);
  workspaces_ = std::make_unique<Workspaces>(loop_, link_, dir_->path(), o_.host_label);
  size_t failed = 0;
  Status s = workspaces_->Mount(mappings, who, &failed);
  if (s.ok()) {
    ctx_.before_exit = [this](std::function<void()> done) {
      if (workspaces_) return workspaces_->Revalidate(std::move(done));
      done();
    };
    return Ok();
  }
  workspaces_.reset();
  // Without FUSE the program still runs, on the local directories; a
  // missing or unreadable remote directory is the user's mistake to fix.
  if (fuse::CheckFuseUsable().ok()) {
    std::string hint = cwd_mapping == failed
                           ? " (the working directory shows the remote directory of the same "
                             "path: choose another with -w or -v, or pass --no-workspace)"
                           : "";
    return Error(s.error().message() + hint);
  }
  PrintError(s.error().message() + "; the program sees the local directories instead");
  return Ok();
}

Status Session::Spawn() {
  ns::NamespaceSpec spec;
  spec.stub_dir = dir_->stub_dir();
  spec.path_injection = o_.config.path_injection;
  spec.socket_path = dir_->socket_path();
  spec.host = o_.host_label;
  spec.session_id = dir_->id();
  spec.program = o_.program;
  bool use_bwrap = bwrap_.ok();
  if (use_bwrap) {
    spec.bwrap_path = *bwrap_;
    spec.unshare_user = ns::NeedUserNamespace();
    spec.cwd = o_.workdir;
    if (workspaces_) spec.mounts = workspaces_->binds();
  } else {
    PrintError(bwrap_.error().message());
  }
  if (auto s = ns::CheckNamespaceSpec(spec); !s) return s;
  std::vector<std::string> env = ns::BuildEnv(CurrentEnv(), spec);
  ctx_.launch_env = env;
  std::vector<std::string> argv = o_.program;
  std::string file = program_path_;
  UniqueFd info_write;
  if (use_bwrap) {
    // Which fd bwrap's report goes to: the first that the program does not
    // inherit, so every inherited fd keeps its number.
    int p[2];
    if (pipe2(p, O_CLOEXEC) == 0) {
      bwrap_info_.Reset(p[0]);
      info_write.Reset(p[1]);
      fcntl(p[0], F_SETFL, O_NONBLOCK);
      spec.info_fd = 3;
      while (o_.inherited_fds.count(spec.info_fd)) ++spec.info_fd;
    }
    argv = ns::BuildBwrapArgv(spec);
    file = spec.bwrap_path;
    // Ctrl-C and Ctrl-\ reach the whole foreground process group, bwrap's
    // waiting parent included, and its death would SIGKILL the program
    // (--die-with-parent) before the program could handle the signal.
    // env(1) starts bwrap with them ignored and gives the program the
    // dispositions mproxy itself started with.
    std::string env_tool = ResolveLocalProgram("env");
    if (!env_tool.empty()) {
      std::string defaults;
      for (const auto& [signo, name] : {std::pair{SIGINT, "INT"}, std::pair{SIGQUIT, "QUIT"}}) {
        if (!o_.ignored_at_start.count(signo)) defaults += (defaults.empty() ? "" : ",") + std::string(name);
      }
      auto dashdash = std::find(argv.begin(), argv.end(), "--");
      if (!defaults.empty() && dashdash != argv.end()) {
        argv.insert(dashdash + 1, {env_tool, "--default-signal=" + defaults, "--"});
      }
      argv.insert(argv.begin(), {env_tool, "--ignore-signal=INT,QUIT"});
      file = env_tool;
    }
  }
  log_->debug("starting {}", file);

  CloseOnExecExcept(o_.inherited_fds);
  std::vector<char*> argv_c = CStrings(argv);
  std::vector<char*> env_c = CStrings(env);
  // 0-2 and the inherited fds below the report's fd keep their numbers.
  std::vector<uv_stdio_container_t> stdio(static_cast<size_t>(std::max(3, spec.info_fd + 1)));
  for (size_t i = 0; i < stdio.size(); ++i) {
    stdio[i].flags = UV_INHERIT_FD;
    stdio[i].data.fd = static_cast<int>(i);
  }
  if (spec.info_fd >= 0) stdio[static_cast<size_t>(spec.info_fd)].data.fd = info_write.get();
  uv_process_options_t po{};
  po.exit_cb = &Session::OnChildExit;
  po.file = file.c_str();
  po.args = argv_c.data();
  po.env = env_c.data();
  po.cwd = !use_bwrap && !o_.workdir.empty() ? o_.workdir.c_str() : nullptr;
  po.stdio_count = static_cast<int>(stdio.size());
  po.stdio = stdio.data();
  child_ = new uv_process_t;
  child_->data = this;
  if (int rc = uv_spawn(loop_, child_, &po); rc != 0) {
    // uv_spawn needs uv_close even when it fails.
    uv_close(reinterpret_cast<uv_handle_t*>(child_),
             [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_process_t*>(h); });
    child_ = nullptr;
    return Error(std::string("cannot start ") + file + ": " + uv_strerror(rc));
  }
  child_running_ = true;
  info_write.Reset();  // bwrap has its copy: end of file once it is done with it
  // mproxy raised its own fd limit (each running command holds a few fds
  // here); the program gets the limit it would have had without mproxy.
  if (o_.program_fd_limit) prlimit(child_->pid, RLIMIT_NOFILE, &*o_.program_fd_limit, nullptr);
  // Ctrl-C and Ctrl-\ reach the program (and its shims) directly; mproxy
  // only waits. TERM and HUP are passed on to the program.
  for (int signo : {SIGINT, SIGQUIT, SIGTERM, SIGHUP}) {
    auto* s = new uv_signal_t;
    uv_signal_init(loop_, s);
    s->data = this;
    uv_signal_start(s, &Session::OnSignal, signo);
    signals_.push_back(s);
  }
  return Ok();
}

void Session::OnSignal(uv_signal_t* h, int signum) noexcept {
  auto* self = static_cast<Session*>(h->data);
  if (self == nullptr || !self->child_running_) return;
  if (signum != SIGTERM && signum != SIGHUP) return;
  // bwrap would die of the signal and take the program with it
  // (--die-with-parent) instead of passing it on: the program gets it.
  if (pid_t pid = self->ProgramPid(); pid > 0) {
    kill(pid, signum);
  } else {
    uv_process_kill(self->child_, signum);
  }
}

pid_t Session::ProgramPid() {
  if (program_pid_ > 0 || !bwrap_info_) return program_pid_;
  char buf[512];
  for (;;) {
    ssize_t n = read(bwrap_info_.get(), buf, sizeof buf);
    if (n > 0 && bwrap_info_text_.size() < 64 * 1024) {
      bwrap_info_text_.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;  // EAGAIN: not written yet (bwrap is still setting up); or EOF
  }
  if (auto pid = ns::ParseBwrapChildPid(bwrap_info_text_)) {
    program_pid_ = *pid;
    bwrap_info_.Reset();
  }
  return program_pid_;
}

void Session::OnChildExit(uv_process_t* p, int64_t status, int signal) noexcept {
  auto* self = static_cast<Session*>(p->data);
  self->child_running_ = false;
  self->exit_status_ = signal != 0 ? 128 + signal : static_cast<int>(status & 0xff);
  self->log_->debug("the program exited: status {} signal {}", status, signal);
  uv_stop(self->loop_);
}

void Session::OnShimConnection(UniqueFd fd) {
  if (lost_) return;  // closing fd: the shim reports the lost session
  auto cmd = std::make_unique<ShimCommand>(loop_, &ctx_, std::move(fd),
                                           [this](ShimCommand* c) { CommandDone(c); });
  ShimCommand* raw = cmd.get();
  running_.push_back(std::move(cmd));
  raw->Start();
}

void Session::CommandDone(ShimCommand* cmd) {
  // Destroyed on the next loop turn: we may be inside one of its callbacks.
  finished_.push_back(cmd);
  if (reaper_ != nullptr) uv_idle_start(reaper_, &Session::OnReap);
}

void Session::OnReap(uv_idle_t* h) noexcept {
  auto* self = static_cast<Session*>(h->data);
  uv_idle_stop(h);
  if (self == nullptr) return;
  auto finished = std::move(self->finished_);
  self->finished_.clear();
  for (ShimCommand* c : finished) {
    self->running_.remove_if([c](const std::unique_ptr<ShimCommand>& p) { return p.get() == c; });
  }
}

void Session::WatchLink(AgentLink* link) {
  link->SetOnLost([this, link](const Status& why) {
    if (link == link_) OnLinkLost(why);
  });
  if (link->down()) OnLinkLost(Error("the connection is closed"));
}

void Session::OnLinkLost(const Status& why) {
  if (lost_ || connecting_ != nullptr || !child_running_) return;
  std::string reason =
      why.ok() ? "the connection to " + o_.host_label + " closed" : why.error().message();
  PrintError(reason + "; reconnecting (remote commands fail until then)");
  retry_delay_ms_ = kFirstRetryDelayMs;
  last_retry_error_.clear();
  ConnectAgain();
}

void Session::ConnectAgain() {
  if (lost_ || connecting_ != nullptr) return;
  // A thread of its own, not libuv's pool: Connect may block for the whole
  // connect timeout, and the pool is joined when the process exits.
  auto job = std::make_shared<ConnectJob>();
  job->options = o_.connect;
  job->async = new uv_async_t;
  uv_async_init(loop_, job->async, &Session::OnConnectDone);
  job->async->data = this;
  connecting_ = job;
  g_connects_in_flight.fetch_add(1);
  std::thread([job]() mutable {
    Result<Connection> result = Error("not run");
    try {
      result = Connect(job->options);
    } catch (const std::exception& e) {
      result = Error(e.what());
    }
    {
      std::lock_guard lock(job->mu);
      job->result = std::move(result);
      job->done = true;
      if (job->async != nullptr) uv_async_send(job->async);
    }
    job.reset();  // a connection nobody took is closed here
    g_connects_in_flight.fetch_sub(1);
  }).detach();
}

void Session::OnConnectDone(uv_async_t* h) noexcept {
  auto* self = static_cast<Session*>(h->data);
  if (self == nullptr || self->connecting_ == nullptr) return;
  auto job = std::move(self->connecting_);
  Result<Connection> result = Error("not run");
  {
    std::lock_guard lock(job->mu);
    if (!job->done) {  // a stray wake-up
      self->connecting_ = std::move(job);
      return;
    }
    result = std::move(job->result);
    CloseAsync(job.get());
  }
  self->OnConnected(std::move(result));
}

void Session::CloseAsync(ConnectJob* job) {
  // Under job->mu.
  job->async->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(job->async),
           [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_async_t*>(h); });
  job->async = nullptr;
}

void Session::OnConnected(Result<Connection> conn) {
  if (lost_) return;
  if (!conn) return RetryLater(conn.error().message());
  Reconnected r;
  r.transport = std::move(conn->transport);
  r.link = std::make_unique<AgentLink>(loop_, std::move(conn->agent_stream), conn->label);
  AgentLink* link = r.link.get();
  reconnected_.push_back(std::move(r));
  link->Start([this, link](const proto::Hello&) { Adopt(link); },
              [this, link](const Status& why) {
                // Lost before its Hello: this attempt failed.
                if (!link->ready()) {
                  RetryLater(why.ok() ? "the agent did not start" : why.error().message());
                }
              });
}

void Session::RetryLater(const std::string& why) {
  if (lost_) return;
  log_->info("reconnecting to {} failed: {}; next try in {} ms", o_.host_label, why,
             retry_delay_ms_);
  if (why != last_retry_error_) {
    PrintError("reconnecting to " + o_.host_label + " failed: " + why + "; trying again");
    last_retry_error_ = why;
  }
  uv_timer_start(retry_timer_, &Session::OnRetryTimer, retry_delay_ms_, 0);
  retry_delay_ms_ = std::min(retry_delay_ms_ * 2, kMaxRetryDelayMs);
}

void Session::OnRetryTimer(uv_timer_t* t) noexcept {
  auto* self = static_cast<Session*>(t->data);
  if (self != nullptr) self->ConnectAgain();
}

void Session::Adopt(AgentLink* link) {
  if (lost_) return;
  link_ = link;
  ctx_.link = link;
  if (commands_) commands_->SetLink(link);
  if (workspaces_) {
    workspaces_->SetLink(link);
    // What the kernel cached may have changed while nobody could ask.
    workspaces_->Revalidate([] {});
  }
  WatchLink(link);
  PrintError("reconnected to " + o_.host_label);
  log_->info("reconnected to {}", o_.host_label);
}

void Session::Teardown() {
  lost_ = true;
  // No link may call back into this object once it is gone (main's link
  // outlives it).
  first_link_->SetOnLost({});
  for (auto& r : reconnected_) r.link->SetOnLost({});
  if (connecting_ != nullptr) {
    // The attempt's result is dropped when its thread finishes (or the
    // process exits first: see ReconnectPending()).
    std::lock_guard lock(connecting_->mu);
    CloseAsync(connecting_.get());
    connecting_.reset();
  }
  if (retry_timer_ != nullptr) {
    retry_timer_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(retry_timer_),
             [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_timer_t*>(h); });
    retry_timer_ = nullptr;
  }
  for (uv_signal_t* s : signals_) {
    s->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(s),
             [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_signal_t*>(h); });
  }
  signals_.clear();
  listener_.reset();
  // Shims of commands still running (the program left them behind) learn
  // the session ended; their remote commands are killed.
  for (auto& c : running_) c->Abandon("the mproxy session ended");
  for (int i = 0; i < 3 && !running_.empty(); ++i) uv_run(loop_, UV_RUN_NOWAIT);
  running_.clear();
  finished_.clear();
  if (reaper_ != nullptr) {
    reaper_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(reaper_),
             [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_idle_t*>(h); });
    reaper_ = nullptr;
  }
  if (child_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(child_),
             [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_process_t*>(h); });
    child_ = nullptr;
  }
  if (commands_) commands_->Shutdown();
  workspaces_.reset();  // file operations stopped, then unmounted
  stub_.reset();  // unmounts; FUSE threads waiting for a refresh were woken above
  commands_.reset();
  dir_.reset();
  uv_run(loop_, UV_RUN_NOWAIT);
}

}  // namespace

std::optional<rlimit> RaiseFdLimit() {
  rlimit old{};
  if (getrlimit(RLIMIT_NOFILE, &old) != 0 || old.rlim_cur >= old.rlim_max) return std::nullopt;
  rlimit raised = old;
  raised.rlim_cur = old.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &raised) != 0) return std::nullopt;
  return old;
}

std::set<int> OpenFds() {
  std::set<int> fds;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return fds;
  int self = dirfd(d);
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    int fd = atoi(e->d_name);
    if (fd != self) fds.insert(fd);
  }
  closedir(d);
  return fds;
}

bool ReconnectPending() { return g_connects_in_flight.load() > 0; }

int RunSession(uv_loop_t* loop, AgentLink* link, const SessionOptions& options) {
  Session session(loop, link, options);
  return session.Run();
}

}  // namespace mproxy::broker
