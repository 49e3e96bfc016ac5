// FuseSession: mount, serve on a thread, unmount. See session.h.
#include "fuse/session.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <linux/fuse.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <utility>

#include <spdlog/spdlog.h>

#include "common/unique_fd.h"

extern char** environ;

namespace mproxy::fuse {
namespace {

// The INIT request this thread is processing (its id, 0 when none) and the
// flags its reply must add. libfuse answers INIT from inside
// fuse_session_process_buf on the thread that read it, so a thread-local
// carries them from NoteInit() to WriteReply().
thread_local uint64_t t_init_unique = 0;
thread_local uint32_t t_init_add_flags = 0;

// Every reply and notification the session writes (fuse_session_custom_io):
// writev, with the flags of the INIT reply completed first.
ssize_t WriteReply(int fd, struct iovec* iov, int count, void* /*userdata*/) {
  if (t_init_unique != 0 && count >= 2 && iov[0].iov_len == sizeof(fuse_out_header) &&
      iov[1].iov_len >= offsetof(fuse_init_out, flags) + sizeof(uint32_t)) {
    auto* header = static_cast<fuse_out_header*>(iov[0].iov_base);
    if (header->unique == t_init_unique && header->error == 0) {
      static_cast<fuse_init_out*>(iov[1].iov_base)->flags |= t_init_add_flags;
    }
  }
  return writev(fd, iov, count);
}

ssize_t ReadRequest(int fd, void* buf, size_t len, void* /*userdata*/) {
  return read(fd, buf, len);
}

constexpr const char kWithoutFuse[] =
    "without FUSE mproxy cannot provide the path-stub directory or workspace "
    "mounts; everything else (the program itself, explicitly local commands) "
    "still works";

bool IsExecutable(const std::string& path) {
  return access(path.c_str(), X_OK) == 0;
}

// fusermount3 the way libfuse finds it: its install dir, then PATH.
std::string FindFusermount() {
  for (const char* dir : {"/usr/bin", "/bin", "/usr/local/bin"}) {
    std::string p = std::string(dir) + "/fusermount3";
    if (IsExecutable(p)) return p;
  }
  const char* path = getenv("PATH");
  if (path == nullptr) return {};
  std::string all(path);
  size_t start = 0;
  while (start <= all.size()) {
    size_t end = all.find(':', start);
    if (end == std::string::npos) end = all.size();
    std::string dir = all.substr(start, end - start);
    if (!dir.empty() && IsExecutable(dir + "/fusermount3")) {
      return dir + "/fusermount3";
    }
    start = end + 1;
  }
  return {};
}

// Runs `fusermount3 -u -q -z path` and waits for it. posix_spawn is safe in
// a multi-threaded process, unlike fork + arbitrary code.
Status FusermountUnmount(const std::string& path) {
  std::string fusermount = FindFusermount();
  if (fusermount.empty()) {
    return Error("fusermount3 not found (install the fuse3 package)");
  }
  std::vector<std::string> args = {fusermount, "-u", "-q", "-z", path};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, fusermount.c_str(), nullptr, nullptr, argv.data(),
                       environ);
  if (rc != 0) return Error::FromErrno("posix_spawn " + fusermount, rc);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Error::FromErrno("waitpid fusermount3", errno);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Error("fusermount3 -u -z " + path + " failed");
  }
  return Ok();
}

Status LazyUnmount(const std::string& path) {
  if (geteuid() == 0) {
    if (umount2(path.c_str(), MNT_DETACH) == 0) return Ok();
    return Error::FromErrno("umount2 " + path, errno);
  }
  return FusermountUnmount(path);
}

void BlockAsyncSignals() {
  sigset_t all;
  sigfillset(&all);
  // Faults must stay deliverable to the faulting thread.
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT}) {
    sigdelset(&all, sig);
  }
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
}

}  // namespace

Status CheckFuseUsable() {
  struct stat st {};
  if (stat("/dev/fuse", &st) != 0) {
    int err = errno;
    if (err == ENOENT) {
      return Error(std::string("FUSE unavailable: /dev/fuse does not exist "
                               "(fuse kernel module not loaded, or a container "
                               "started without --device /dev/fuse); ") +
                       kWithoutFuse,
                   err);
    }
    return Error(Error::FromErrno("FUSE unavailable: stat /dev/fuse", err)
                         .message() +
                     "; " + kWithoutFuse,
                 err);
  }
  UniqueFd fd(open("/dev/fuse", O_RDWR | O_CLOEXEC));
  if (!fd) {
    int err = errno;
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return Error("FUSE unavailable: cannot open /dev/fuse: " +
                     std::string(strerror(err)) + " (mode " + mode +
                     ", owner uid " + std::to_string(st.st_uid) +
                     "; it must be readable and writable by uid " +
                     std::to_string(geteuid()) + "); " + kWithoutFuse,
                 err);
  }
  if (geteuid() != 0 && FindFusermount().empty()) {
    return Error(std::string("FUSE unavailable: fusermount3 not found, which "
                             "unprivileged mounts need (install the fuse3 "
                             "package); ") +
                     kWithoutFuse,
                 ENOENT);
  }
  return Ok();
}

Status ClearStaleMount(const std::string& mountpoint) {
  struct stat st {};
  if (stat(mountpoint.c_str(), &st) != 0) {
    int err = errno;
    if (err != ENOTCONN && err != ECONNABORTED) {
      return Error::FromErrno("mountpoint " + mountpoint, err);
    }
    // A FUSE mount whose server died: the kernel still has it mounted.
    if (Status s = LazyUnmount(mountpoint); !s) {
      return Error("mountpoint " + mountpoint +
                       " is a stale FUSE mount (transport endpoint is not "
                       "connected) and could not be detached: " +
                       s.error().message() + "; run `fusermount3 -u -z " +
                       mountpoint + "`",
                   err);
    }
    if (stat(mountpoint.c_str(), &st) != 0) {
      return Error::FromErrno(
          "mountpoint " + mountpoint + " after detaching a stale mount", errno);
    }
  }
  if (!S_ISDIR(st.st_mode)) {
    return Error("mountpoint " + mountpoint + " is not a directory", ENOTDIR);
  }
  return Ok();
}

FuseSession::FuseSession(SessionOptions options)
    : options_(std::move(options)),
      log_(options_.logger ? options_.logger : spdlog::default_logger()) {}

Result<std::unique_ptr<FuseSession>> FuseSession::Start(
    SessionOptions options, const fuse_lowlevel_ops& ops, void* userdata) {
  if (Status s = CheckFuseUsable(); !s) return s.error();
  if (Status s = ClearStaleMount(options.mountpoint); !s) return s.error();

  std::unique_ptr<FuseSession> session(new FuseSession(std::move(options)));
  const std::string& mnt = session->options_.mountpoint;

  std::string joined;
  for (const auto& o : session->options_.mount_options) {
    if (!joined.empty()) joined += ',';
    joined += o;
  }
  std::vector<std::string> arg_storage = {"mproxy"};
  if (!joined.empty()) {
    arg_storage.push_back("-o");
    arg_storage.push_back(joined);
  }
  std::vector<char*> argv;
  for (auto& a : arg_storage) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  session->se_ = fuse_session_new(&args, &ops, sizeof(ops), userdata);
  fuse_opt_free_args(&args);
  if (session->se_ == nullptr) {
    return Error("fuse_session_new failed for " + mnt + " (options: " +
                 joined + ")");
  }
  if (fuse_session_mount(session->se_, mnt.c_str()) != 0) {
    int err = errno;
    fuse_session_destroy(session->se_);
    session->se_ = nullptr;
    return Error("mounting FUSE at " + mnt +
                     " failed (libfuse printed the reason above; a container "
                     "may lack CAP_SYS_ADMIN or a working setuid "
                     "fusermount3); " +
                     kWithoutFuse,
                 err);
  }

  // Replies go through WriteReply (see SessionOptions::handle_killpriv);
  // the fd stays the one fuse_session_mount opened.
  static const fuse_custom_io kIo = {&WriteReply, &ReadRequest, nullptr, nullptr};
  if (int rc = fuse_session_custom_io(session->se_, &kIo, fuse_session_fd(session->se_));
      rc != 0) {
    session->Stop();
    return Error("fuse " + mnt + ": fuse_session_custom_io: " + strerror(-rc), -rc);
  }

  // Workers poll; a blocking read could not notice Stop().
  int fd = fuse_session_fd(session->se_);
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    int err = errno;
    session->Stop();
    return Error::FromErrno("fuse " + mnt + ": making /dev/fuse non-blocking",
                            err);
  }
  session->stop_fd_.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!session->stop_fd_) {
    int err = errno;
    session->Stop();
    return Error::FromErrno("fuse " + mnt + ": eventfd", err);
  }
  try {
    for (unsigned i = 0; i < session->options_.threads; ++i) {
      session->workers_.emplace_back([s = session.get()] { s->WorkerMain(); });
    }
    session->notifier_thread_ =
        std::thread([s = session.get()] { s->NotifierMain(); });
  } catch (const std::system_error& e) {
    session->Stop();
    return Error("fuse " + mnt + ": starting threads: " + e.what());
  }
  return session;
}

FuseSession::~FuseSession() { Stop(); }

void FuseSession::WorkerMain() {
  BlockAsyncSignals();
  fuse_buf buf{};
  pollfd fds[2] = {{fuse_session_fd(se_), POLLIN, 0},
                   {stop_fd_.get(), POLLIN, 0}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      log_->error("fuse {}: poll: {}", options_.mountpoint, strerror(errno));
      break;
    }
    if (fds[1].revents != 0) break;  // Stop()
    // Several workers wake for one request; the losers find none.
    if (ServeOne(&buf) == Served::kEnded) break;
  }
  free(buf.mem);
}

FuseSession::Served FuseSession::ServeOne(fuse_buf* buf) {
  int res = fuse_session_receive_buf(se_, buf);
  if (res == -EAGAIN || res == -EINTR) return Served::kNone;
  if (res == 0) return Served::kEnded;  // unmounted from outside or aborted (ENODEV)
  if (res < 0) {
    log_->error("fuse {}: reading /dev/fuse: {}", options_.mountpoint, strerror(-res));
    return Served::kEnded;
  }
  NoteInit(*buf);
  fuse_session_process_buf(se_, buf);
  t_init_unique = 0;
  return Served::kOne;
}

int FuseSession::fd() const { return se_ != nullptr ? fuse_session_fd(se_) : -1; }

bool FuseSession::ServeReady(unsigned max_requests) {
  for (unsigned i = 0; i < max_requests; ++i) {
    if (se_ == nullptr || stopping()) return false;
    Served s = ServeOne(&owner_buf_);
    if (s != Served::kOne) return s == Served::kNone;
  }
  return true;  // more may wait: the loop comes back (level-triggered)
}

void FuseSession::NoteInit(const fuse_buf& buf) const {
  if ((buf.flags & FUSE_BUF_IS_FD) != 0 ||
      buf.size < sizeof(fuse_in_header) + sizeof(fuse_init_in)) {
    return;
  }
  const auto* in = static_cast<const fuse_in_header*>(buf.mem);
  if (in->opcode != FUSE_INIT) return;
  const auto* init = reinterpret_cast<const fuse_init_in*>(in + 1);
  t_init_add_flags = 0;
  if (options_.handle_killpriv && (init->flags & FUSE_HANDLE_KILLPRIV) != 0) {
    t_init_add_flags |= FUSE_HANDLE_KILLPRIV;
  }
  t_init_unique = in->unique;
}

void FuseSession::NotifierMain() {
  BlockAsyncSignals();
  for (;;) {
    Invalidation item;
    {
      std::unique_lock lock(notify_mu_);
      notify_cv_.wait(lock, [&] { return notifier_stop_ || !queue_.empty(); });
      if (notifier_stop_) return;
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    if (item.then) {
      item.then();
      continue;
    }
    bool entry = item.expire || !item.name.empty();
    int rc = 0;
    if (item.expire) {
      rc = fuse_lowlevel_notify_expire_entry(se_, item.ino, item.name.c_str(), item.name.size(),
                                             FUSE_LL_EXPIRE_ONLY);
      if (rc == -ENOSYS && item.or_invalidate) {
        rc = fuse_lowlevel_notify_inval_entry(se_, item.ino, item.name.c_str(), item.name.size());
      }
      if (rc == -ENOSYS) rc = 0;
    } else if (item.name.empty()) {
      rc = fuse_lowlevel_notify_inval_inode(se_, item.ino, -1, 0);
    } else {
      rc = fuse_lowlevel_notify_inval_entry(se_, item.ino, item.name.c_str(),
                                            item.name.size());
    }
    // ENOENT: the kernel had nothing cached. Anything else only means the
    // entry lives until its timeout.
    if (rc != 0 && rc != -ENOENT) {
      log_->debug("fuse {}: invalidating {} {}: {}", options_.mountpoint,
                  item.ino, item.name, strerror(-rc));
    }
    if (entry) {
      std::lock_guard lock(notify_mu_);
      --entries_pending_;
    }
  }
}

void FuseSession::InvalidateEntry(fuse_ino_t parent, std::string name) {
  {
    std::lock_guard lock(notify_mu_);
    if (notifier_stop_) return;
    if (!name.empty()) ++entries_pending_;
    queue_.push_back({parent, std::move(name), nullptr, false, false});
  }
  notify_cv_.notify_one();
}

void FuseSession::InvalidateAttributes(fuse_ino_t ino) {
  InvalidateEntry(ino, std::string());
}

void FuseSession::ExpireEntry(fuse_ino_t parent, std::string name, bool or_invalidate) {
  {
    std::lock_guard lock(notify_mu_);
    if (notifier_stop_) return;
    ++entries_pending_;
    queue_.push_back({parent, std::move(name), nullptr, true, or_invalidate});
  }
  notify_cv_.notify_one();
}

void FuseSession::AfterInvalidations(std::function<void()> then) {
  {
    std::lock_guard lock(notify_mu_);
    if (!notifier_stop_) {
      queue_.push_back({0, std::string(), std::move(then), false, false});
      notify_cv_.notify_one();
      return;
    }
  }
  then();
}

void FuseSession::AfterAttributeInvalidations(std::function<void()> then) {
  {
    std::lock_guard lock(notify_mu_);
    if (!notifier_stop_ && entries_pending_ == 0) {
      queue_.push_back({0, std::string(), std::move(then), false, false});
      notify_cv_.notify_one();
      return;
    }
  }
  then();
}

void FuseSession::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_.store(true, std::memory_order_release);

  if (notifier_thread_.joinable()) {
    {
      std::lock_guard lock(notify_mu_);
      notifier_stop_ = true;
    }
    notify_cv_.notify_all();
    notifier_thread_.join();
    // Invalidations no longer matter, but whoever waits on a marker must
    // still hear back.
    std::deque<Invalidation> left;
    {
      std::lock_guard lock(notify_mu_);
      left.swap(queue_);
    }
    for (auto& item : left) {
      if (item.then) item.then();
    }
  }

  if (stop_fd_) {
    uint64_t one = 1;
    if (write(stop_fd_.get(), &one, sizeof one) != sizeof one) {
      log_->error("fuse {}: waking workers: {}", options_.mountpoint,
                  strerror(errno));
    }
  }
  for (auto& w : workers_) w.join();
  workers_.clear();
  free(owner_buf_.mem);
  owner_buf_.mem = nullptr;
  if (se_ == nullptr) return;
  fuse_session_exit(se_);
  // Closes /dev/fuse (users of a still-busy, detached mount then get
  // ENOTCONN) and lazily unmounts, via fusermount3 when unprivileged.
  fuse_session_unmount(se_);
  fuse_session_destroy(se_);
  se_ = nullptr;
}

}  // namespace mproxy::fuse
