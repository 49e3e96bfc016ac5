// LocalFd, LocalReader, LocalWriter.
#include "broker/local_fd.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace mproxy::broker {
namespace {

constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kFileWriteChunk = 1024 * 1024;

template <typename H>
void CloseHandle(H*& h) {
  if (h == nullptr) return;
  h->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(h),
           [](uv_handle_t* p) noexcept { delete reinterpret_cast<H*>(p); });
  h = nullptr;
}

}  // namespace

// One read or write of a regular file on libuv's threadpool. It holds the fd
// and its buffer, so the reader or writer that started it may go away first:
// `done` is then cleared and the job only cleans up.
struct FileJob {
  uv_fs_t req{};
  std::shared_ptr<LocalFd> fd;
  std::string buf;
  std::function<void(ssize_t, const std::string&)> done;

  static void Start(uv_loop_t* loop, FileJob* job, bool write) {
    uv_buf_t b = uv_buf_init(job->buf.data(), static_cast<unsigned>(job->buf.size()));
    job->req.data = job;
    // Offset -1: the file's own position, as read(2)/write(2) use it.
    int rc = write ? uv_fs_write(loop, &job->req, job->fd->fd(), &b, 1, -1, &FileJob::OnDone)
                   : uv_fs_read(loop, &job->req, job->fd->fd(), &b, 1, -1, &FileJob::OnDone);
    if (rc != 0) {  // not queued: report it from the loop like a result
      job->req.result = rc;
      FileJob::OnDone(&job->req);
    }
  }
  static void OnDone(uv_fs_t* req) noexcept {
    auto* job = static_cast<FileJob*>(req->data);
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    if (auto done = std::move(job->done)) done(n, job->buf);
    delete job;
  }
};

Status CachedFileType(int fd, struct stat* out) {
  struct statx stx {};
  if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE, &stx) != 0) {
    return Error::FromErrno("fd " + std::to_string(fd), errno);
  }
  *out = {};
  out->st_mode = stx.stx_mode;
  out->st_rdev = makedev(stx.stx_rdev_major, stx.stx_rdev_minor);
  return Ok();
}

Result<LocalFd> LocalFd::Open(int fd, bool for_write) {
  struct stat st {};
  if (auto s = CachedFileType(fd, &st); !s) return s.error();
  LocalFd out;
  if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || S_ISDIR(st.st_mode)) {
    out.kind_ = Kind::kFile;
  } else if (S_ISSOCK(st.st_mode)) {
    out.kind_ = Kind::kSocket;
  } else {
    out.kind_ = Kind::kPollable;
    // A new open file description of the same pipe or terminal, so our
    // O_NONBLOCK does not leak to the processes sharing the original.
    std::string path = "/proc/self/fd/" + std::to_string(fd);
    int flags = (for_write ? O_WRONLY : O_RDONLY) | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
    int re = ::open(path.c_str(), flags);
    if (re >= 0) {
      out.fd_.Reset(re);
      return out;
    }
  }
  // Our own copy of the caller's fd, so the caller may close theirs at any
  // time and the number can never be someone else's when we are done.
  out.fd_.Reset(fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!out.fd_) return Error::FromErrno("dup fd " + std::to_string(fd), errno);
  if (out.kind_ == Kind::kPollable) {
    // No /proc, or the reopen was refused (a pipe of another user): flip
    // the flag on the shared description and put it back when done.
    int old = fcntl(out.fd_.get(), F_GETFL);
    if (old < 0) return Error::FromErrno("fcntl fd " + std::to_string(fd), errno);
    if (!(old & O_NONBLOCK)) {
      fcntl(out.fd_.get(), F_SETFL, old | O_NONBLOCK);
      out.restore_flags_ = old;
    }
  }
  return out;
}

LocalFd::LocalFd(LocalFd&& other) noexcept
    : fd_(std::move(other.fd_)),
      restore_flags_(std::exchange(other.restore_flags_, -1)),
      kind_(other.kind_) {}

LocalFd& LocalFd::operator=(LocalFd&& other) noexcept {
  if (this != &other) {
    RestoreFlags();
    fd_ = std::move(other.fd_);
    restore_flags_ = std::exchange(other.restore_flags_, -1);
    kind_ = other.kind_;
  }
  return *this;
}

LocalFd::~LocalFd() { RestoreFlags(); }

void LocalFd::RestoreFlags() {
  if (restore_flags_ >= 0 && fd_.valid()) fcntl(fd_.get(), F_SETFL, restore_flags_);
  restore_flags_ = -1;
}

ssize_t LocalFd::Read(char* buf, size_t len) const {
  for (;;) {
    ssize_t n = kind_ == Kind::kSocket ? ::recv(fd(), buf, len, MSG_DONTWAIT)
                                       : ::read(fd(), buf, len);
    if (n >= 0 || errno != EINTR) return n;
  }
}

ssize_t LocalFd::Write(const char* buf, size_t len) const {
  for (;;) {
    ssize_t n = kind_ == Kind::kSocket ? ::send(fd(), buf, len, MSG_DONTWAIT | MSG_NOSIGNAL)
                                       : ::write(fd(), buf, len);
    if (n >= 0 || errno != EINTR) return n;
  }
}

// --- LocalReader -------------------------------------------------------------

LocalReader::LocalReader(uv_loop_t* loop, LocalFd fd,
                         std::function<bool(std::string_view)> on_data,
                         std::function<void(const Status&)> on_eof)
    : loop_(loop), fd_(std::move(fd)), on_data_(std::move(on_data)), on_eof_(std::move(on_eof)) {}

LocalReader::~LocalReader() { Close(); }

void LocalReader::Start() {
  if (done_) return;
  if (fd_.kind() != LocalFd::Kind::kFile) {
    poll_ = new uv_poll_t;
    if (uv_poll_init(loop_, poll_, fd_.fd()) != 0) {
      delete poll_;  // never initialised: no close needed
      poll_ = nullptr;
    } else {
      poll_->data = this;
    }
  }
  // Regular files (and anything epoll refuses) are read on the threadpool.
  if (poll_ == nullptr) file_ = std::make_shared<LocalFd>(std::move(fd_));
  running_ = true;
  Arm();
}

void LocalReader::Arm() {
  if (!running_ || paused_ || done_) return;
  if (poll_ != nullptr) uv_poll_start(poll_, UV_READABLE | UV_DISCONNECT, &LocalReader::OnPoll);
  if (file_ && job_ == nullptr) StartFileRead();
}

void LocalReader::Disarm() {
  if (poll_ != nullptr) uv_poll_stop(poll_);
  // A file read in flight finishes; its data is delivered and no next one
  // starts while paused.
}

void LocalReader::StartFileRead() {
  job_ = new FileJob;
  job_->fd = file_;
  job_->buf.resize(kReadChunk);
  job_->done = [this](ssize_t n, const std::string& buf) { FileReadDone(n, buf); };
  FileJob::Start(loop_, job_, /*write=*/false);
}

void LocalReader::FileReadDone(ssize_t n, const std::string& buf) {
  job_ = nullptr;
  if (n <= 0) {
    Status why = n == 0 ? Ok() : Status(Error::FromErrno("read", static_cast<int>(-n)));
    Close();
    on_eof_(why);  // may destroy this
    return;
  }
  if (!on_data_(std::string_view(buf.data(), static_cast<size_t>(n)))) return Pause();
  Arm();
}

void LocalReader::Pause() {
  paused_ = true;
  Disarm();
}

void LocalReader::Resume() {
  paused_ = false;
  Arm();
}

void LocalReader::Close() {
  done_ = true;
  running_ = false;
  CloseHandle(poll_);
  if (job_ != nullptr) job_->done = nullptr;
  job_ = nullptr;
}

void LocalReader::OnPoll(uv_poll_t* h, int, int) noexcept {
  if (auto* self = static_cast<LocalReader*>(h->data)) self->ReadSome();
}

void LocalReader::ReadSome() {
  char buf[kReadChunk];
  ssize_t n = fd_.Read(buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
  if (n <= 0) {
    Status why = n == 0 ? Ok() : Status(Error::FromErrno("read", errno));
    Close();
    on_eof_(why);  // may destroy this
    return;
  }
  if (!on_data_(std::string_view(buf, static_cast<size_t>(n)))) Pause();
}

// --- LocalWriter -------------------------------------------------------------

LocalWriter::LocalWriter(uv_loop_t* loop, LocalFd fd, std::function<void(size_t)> on_written,
                         std::function<void(const Status&)> on_error)
    : loop_(loop),
      fd_(std::move(fd)),
      on_written_(std::move(on_written)),
      on_error_(std::move(on_error)) {
  if (fd_.kind() != LocalFd::Kind::kFile) {
    poll_ = new uv_poll_t;
    if (uv_poll_init(loop_, poll_, fd_.fd()) != 0) {
      delete poll_;
      poll_ = nullptr;
    } else {
      poll_->data = this;
    }
  }
  if (poll_ == nullptr) file_ = std::make_shared<LocalFd>(std::move(fd_));
}

LocalWriter::~LocalWriter() { Close(); }

void LocalWriter::Close() {
  CloseHandle(poll_);
  if (job_ != nullptr) job_->done = nullptr;
  job_ = nullptr;
}

void LocalWriter::Write(std::string_view bytes) {
  if (failed_) {
    on_written_(bytes.size());  // discarded, but the credit must flow
    return;
  }
  if (head_ > 0 && head_ == buf_.size()) {
    buf_.clear();
    head_ = 0;
  }
  buf_.append(bytes);
  Flush();
}

void LocalWriter::WhenDrained(std::function<void()> done) {
  if (pending() == 0 || failed_) {
    done();
    return;
  }
  on_drained_ = std::move(done);
}

void LocalWriter::OnPoll(uv_poll_t* h, int, int) noexcept {
  if (auto* self = static_cast<LocalWriter*>(h->data)) self->Flush();
}

void LocalWriter::Fail(const Status& s) {
  failed_ = true;
  size_t dropped = pending();
  buf_.clear();
  head_ = 0;
  if (polling_ && poll_ != nullptr) uv_poll_stop(poll_);
  polling_ = false;
  on_error_(s);
  if (dropped > 0) on_written_(dropped);
  if (on_drained_) std::exchange(on_drained_, nullptr)();
}

void LocalWriter::FlushFile() {
  if (job_ != nullptr || pending() == 0) return;
  job_ = new FileJob;
  job_->fd = file_;
  job_->buf.assign(buf_, head_, std::min(pending(), kFileWriteChunk));
  job_->done = [this](ssize_t n, const std::string&) { FileWriteDone(n); };
  FileJob::Start(loop_, job_, /*write=*/true);
}

void LocalWriter::FileWriteDone(ssize_t n) {
  job_ = nullptr;
  if (n < 0) return Fail(Error::FromErrno("write", static_cast<int>(-n)));
  if (n == 0) return Fail(Error("write: the file took no bytes"));
  head_ += static_cast<size_t>(n);
  on_written_(static_cast<size_t>(n));
  if (pending() > 0) return FlushFile();
  if (on_drained_) std::exchange(on_drained_, nullptr)();
}

void LocalWriter::Flush() {
  if (file_) return FlushFile();
  size_t written = 0;
  while (pending() > 0) {
    ssize_t n = fd_.Write(buf_.data() + head_, pending());
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0) {
      if (written > 0) on_written_(written);
      Fail(Error::FromErrno("write", errno));
      return;
    }
    head_ += static_cast<size_t>(n);
    written += static_cast<size_t>(n);
  }
  if (pending() > 0 && poll_ != nullptr && !polling_) {
    uv_poll_start(poll_, UV_WRITABLE, &LocalWriter::OnPoll);
    polling_ = true;
  } else if (pending() == 0 && polling_) {
    uv_poll_stop(poll_);
    polling_ = false;
  }
  if (written > 0) on_written_(written);
  if (pending() == 0 && on_drained_) std::exchange(on_drained_, nullptr)();
}

}  // namespace mproxy::broker
