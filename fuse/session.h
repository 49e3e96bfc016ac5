// FuseSession: one mounted libfuse low-level session served on its own
// threads, with RAII unmount, stale-mount recovery, a clear "FUSE is not
// usable here" check, and asynchronous kernel cache invalidation.
#pragma once

#include <fuse_lowlevel.h>
#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace spdlog {
class logger;
}

namespace mproxy::fuse {

// Whether this process can mount a FUSE filesystem at all: /dev/fuse exists
// and can be opened, and (unprivileged) fusermount3 is installed. The error
// says which of these is missing and what still works without FUSE. Cheap;
// the broker may call it once up front to report the problem a single time.
Status CheckFuseUsable();

// If `mountpoint` is a dead FUSE mount (a previous process was killed while
// serving it, so every access fails with ENOTCONN), detaches it: umount2
// MNT_DETACH as root, `fusermount3 -u -q -z` otherwise. Then checks that
// `mountpoint` is a directory. Safe to call on a healthy directory.
Status ClearStaleMount(const std::string& mountpoint);

struct SessionOptions {
  std::string mountpoint;
  // FUSE mount options, joined into one "-o a,b,c" (e.g. "ro",
  // "default_permissions", "fsname=x").
  std::vector<std::string> mount_options;
  // Worker threads serving requests (a callback that blocks, such as a
  // refresh, ties up one of them). 0: none; the owner's thread serves them
  // with ServeReady() whenever fd() is readable (an event loop that already
  // runs the filesystem's replies saves a thread wake-up per request). Its
  // callbacks must never block, and that thread must never touch the mount.
  unsigned threads = 4;
  // Tell the kernel that the filesystem clears set-id bits itself on write,
  // truncate and chown (FUSE_HANDLE_KILLPRIV), where the kernel offers it.
  // Without it the kernel asks GETATTR before every chown. libfuse 3.14
  // leaves the flag out of its INIT reply even when the filesystem wants it
  // (libfuse issue 884), so the session adds it to that reply itself.
  bool handle_killpriv = false;
  // Where warnings go; null means spdlog's default logger.
  std::shared_ptr<spdlog::logger> logger;
};

// One mounted session. Owned by the filesystem object that provides `ops` and
// `userdata` (which must outlive it). Start(), Stop() and the destructor are
// for the owner's thread; Invalidate*() and stopping() may be called from any
// thread, including from inside a FUSE callback.
//
// Threads: a fixed pool of workers, all async signals blocked, each polling
// /dev/fuse (non-blocking) and an eventfd that Stop() signals. Not libfuse's
// own mt loop: it stops by cancelling workers and drops requests it has
// already read once the session is exited, which leaves their callers in an
// uninterruptible wait. Neither a libuv loop nor signal handling ever waits
// on FUSE. A second thread sends
// cache invalidations to the kernel: fuse_lowlevel_notify_inval_entry() takes
// the parent directory's inode lock, which an in-flight lookup may hold, so
// calling it from a callback (or from a thread a callback waits on) could
// deadlock; queued, it just waits its turn.
class FuseSession {
 public:
  // Checks CheckFuseUsable(), clears a stale mount, creates the session,
  // mounts it and starts the worker and notifier threads.
  static Result<std::unique_ptr<FuseSession>> Start(
      SessionOptions options, const fuse_lowlevel_ops& ops, void* userdata);

  FuseSession(const FuseSession&) = delete;
  FuseSession& operator=(const FuseSession&) = delete;
  ~FuseSession();  // Stop()

  // Lets each worker finish the request in hand, joins every thread, then
  // closes /dev/fuse (anything still waiting on the mount gets ENOTCONN) and
  // lazily unmounts. Blocks until callbacks in progress return, so a callback
  // must never wait on the thread that calls Stop(). Idempotent.
  void Stop();
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

  // Queue "forget the dentry parent/name" (a removed entry vanishes now, not
  // after its entry timeout) or "forget the attributes of ino".
  void InvalidateEntry(fuse_ino_t parent, std::string name);
  void InvalidateAttributes(fuse_ino_t ino);
  // Queue "the dentry parent/name must be looked up again before its next
  // use", which unlike InvalidateEntry leaves it in place when the lookup
  // finds the same node (a directory that is some process's cwd stays
  // usable). Needs Linux 6.2; on older kernels it is InvalidateEntry when
  // `or_invalidate`, else nothing.
  void ExpireEntry(fuse_ino_t parent, std::string name, bool or_invalidate);
  // Runs `then` on the notifier thread once every invalidation queued before
  // it was delivered to the kernel (at once, on this thread, after Stop()).
  // May carry the reply to a FUSE request only if that request holds no
  // kernel inode lock (OPEN, FLUSH): an entry invalidation ahead waits for
  // its directory's lock.
  void AfterInvalidations(std::function<void()> then);
  // The same for the reply to a request that holds inode locks (SETATTR,
  // FALLOCATE, LINK, UNLINK, RENAME). An entry invalidation takes its
  // directory's lock, whose holder may be waiting for a lock this request
  // holds (an unlink of the file being truncated): when one is queued or
  // being delivered, `then` runs at once on this thread instead (the
  // invalidations arrive a moment later). Attribute invalidations take no
  // inode lock; one of an inode being evicted waits for the eviction, which
  // waits only for READ and WRITE replies, never carried here.
  void AfterAttributeInvalidations(std::function<void()> then);

  const std::string& mountpoint() const { return options_.mountpoint; }

  // With threads = 0, on the owner's thread: /dev/fuse (non-blocking), and
  // serving up to `max_requests` of the requests waiting on it. Returns
  // false once the session has ended (unmounted from outside, or Stop()).
  int fd() const;
  bool ServeReady(unsigned max_requests);

 private:
  struct Invalidation {
    fuse_ino_t ino = 0;
    std::string name;  // empty: attributes of ino; else: entry in dir ino
    std::function<void()> then;  // set: a marker, run in turn
    bool expire = false;         // ExpireEntry
    bool or_invalidate = false;
  };

  explicit FuseSession(SessionOptions options);
  void WorkerMain();
  // Reads one request into `buf` and serves it: kNone when none was waiting,
  // kEnded when the session is over (unmounted, aborted, a read error).
  enum class Served { kOne, kNone, kEnded };
  Served ServeOne(fuse_buf* buf);
  // Before `buf` is processed: when it is the INIT request, what its reply
  // must add (handed to the reply writer in session.cc, thread-locally).
  void NoteInit(const fuse_buf& buf) const;
  void NotifierMain();

  const SessionOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  fuse_session* se_ = nullptr;
  UniqueFd stop_fd_;  // eventfd: readable once Stop() has begun
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;  // owner thread only

  std::vector<std::thread> workers_;
  fuse_buf owner_buf_{};  // ServeReady()'s, owner thread only

  std::thread notifier_thread_;
  // Guards queue_ and notifier_stop_; leaf lock, never held across a kernel
  // call.
  std::mutex notify_mu_;
  std::condition_variable notify_cv_;
  std::deque<Invalidation> queue_;
  // Entry invalidations in queue_ or being delivered.
  size_t entries_pending_ = 0;
  bool notifier_stop_ = false;
};

}  // namespace mproxy::fuse
