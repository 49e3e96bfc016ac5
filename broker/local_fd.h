// Pumping a local file descriptor (the user's stdin/stdout, later the fds a
// shim passes) on the libuv loop, without changing the O_NONBLOCK flag of a
// file description other processes share: pipes and terminals are reopened
// through /proc/self/fd, sockets use MSG_DONTWAIT, regular files are read and
// written on libuv's threadpool: one may live on the session's own FUSE
// workspace, whose requests this very loop answers.
#pragma once

#include <sys/stat.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/unique_fd.h"

namespace mproxy::broker {

struct FileJob;

// fstat(2) of `fd` from the kernel's cached attributes (statx with
// AT_STATX_DONT_SYNC): only the type and device number, which never change.
// The loop thread must use this, not fstat: for a file on the session's
// workspace fstat asks the FUSE server, which waits for the loop.
Status CachedFileType(int fd, struct stat* out);

// A private, nonblocking handle on a local fd. Owned by one reader or writer.
class LocalFd {
 public:
  enum class Kind { kPollable, kSocket, kFile };

  // Makes a private nonblocking handle on `fd`, which stays the caller's
  // (it may be closed right after: the handle holds its own copy).
  static Result<LocalFd> Open(int fd, bool for_write);

  LocalFd(LocalFd&& other) noexcept;
  LocalFd& operator=(LocalFd&& other) noexcept;
  ~LocalFd();

  int fd() const { return fd_.get(); }
  Kind kind() const { return kind_; }

  // read/write that never block on pollable fds: -1 with errno EAGAIN then.
  ssize_t Read(char* buf, size_t len) const;
  ssize_t Write(const char* buf, size_t len) const;

 private:
  LocalFd() = default;
  void RestoreFlags();

  UniqueFd fd_;             // a reopened description, or a dup of the caller's
  int restore_flags_ = -1;  // flags to put back on a shared description
  Kind kind_ = Kind::kPollable;
};

// Reads a local fd and passes the bytes on. Owned by a command; loop thread.
// Its uv handles are heap-allocated and freed in their close callbacks, so the
// object itself may be destroyed right after Close() (or instead of it).
class LocalReader {
 public:
  // on_data returns false to pause reading until Resume().
  LocalReader(uv_loop_t* loop, LocalFd fd, std::function<bool(std::string_view)> on_data,
              std::function<void(const Status&)> on_eof);
  ~LocalReader();
  LocalReader(const LocalReader&) = delete;
  LocalReader& operator=(const LocalReader&) = delete;

  void Start();
  void Pause();
  void Resume();
  // Stops for good. Safe to call more than once.
  void Close();

 private:
  static void OnPoll(uv_poll_t* h, int status, int events) noexcept;
  void ReadSome();
  void StartFileRead();
  void FileReadDone(ssize_t n, const std::string& buf);
  void Arm();
  void Disarm();

  uv_loop_t* loop_;
  LocalFd fd_;
  std::function<bool(std::string_view)> on_data_;
  std::function<void(const Status&)> on_eof_;
  uv_poll_t* poll_ = nullptr;    // freed in close callback
  std::shared_ptr<LocalFd> file_;  // a regular file: read by jobs, which share it
  FileJob* job_ = nullptr;         // the read in flight; it outlives this if need be
  bool running_ = false;
  bool paused_ = false;
  bool done_ = false;
};

// Writes bytes to a local fd as it becomes writable. Owned by a command; loop
// thread.
class LocalWriter {
 public:
  // on_written(n): n more bytes reached the fd. on_error: the fd refused
  // (EPIPE and the like); later writes are discarded.
  LocalWriter(uv_loop_t* loop, LocalFd fd, std::function<void(size_t)> on_written,
              std::function<void(const Status&)> on_error);
  ~LocalWriter();
  LocalWriter(const LocalWriter&) = delete;
  LocalWriter& operator=(const LocalWriter&) = delete;

  void Write(std::string_view bytes);
  size_t pending() const { return buf_.size() - head_; }
  bool failed() const { return failed_; }
  // Calls `done` once everything queued so far is written (or failed).
  void WhenDrained(std::function<void()> done);
  void Close();

 private:
  static void OnPoll(uv_poll_t* h, int status, int events) noexcept;
  void Flush();
  void FlushFile();
  void FileWriteDone(ssize_t n);
  void Fail(const Status& s);

  uv_loop_t* loop_;
  LocalFd fd_;
  std::function<void(size_t)> on_written_;
  std::function<void(const Status&)> on_error_;
  std::function<void()> on_drained_;
  uv_poll_t* poll_ = nullptr;
  std::shared_ptr<LocalFd> file_;  // as in LocalReader
  FileJob* job_ = nullptr;         // the write in flight
  bool polling_ = false;
  bool failed_ = false;
  std::string buf_;
  size_t head_ = 0;
};

}  // namespace mproxy::broker
