// Enumerating and classifying the shim's inherited fds.
#include "shim/fds.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "common/unique_fd.h"

namespace mproxy::shim {
namespace {

namespace wire = proto::shim;

// Highest fd probed when /proc is not mounted: probing costs one syscall per
// number, and inherited fds past this are rare.
constexpr int kProbeLimit = 4096;
constexpr long kMaxFdNumber = 0x7fffffff;

// Appends the open fds >= 3 listed in /proc/self/fd. False when the
// directory cannot be read.
bool ListProcFds(std::vector<int>* out) {
  UniqueFd dir(::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return false;
  alignas(dirent64) char buf[4096];
  for (;;) {
    ssize_t n = ::getdents64(dir.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      const auto* d = reinterpret_cast<const dirent64*>(buf + off);
      off += d->d_reclen;
      long fd = 0;
      bool digits = d->d_name[0] != '\0';
      for (const char* p = d->d_name; *p != '\0' && digits; ++p) {
        digits = *p >= '0' && *p <= '9' && fd <= kMaxFdNumber / 10;
        fd = fd * 10 + (*p - '0');
      }
      if (digits && fd >= 3 && fd <= kMaxFdNumber && fd != dir.get()) {
        out->push_back(static_cast<int>(fd));
      }
    }
  }
  std::sort(out->begin(), out->end());
  return true;
}

void ProbeFds(std::vector<int>* out) {
  rlimit lim{};
  int limit = kProbeLimit;
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < static_cast<rlim_t>(limit)) {
    limit = static_cast<int>(lim.rlim_cur);
  }
  for (int fd = 3; fd < limit; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0) out->push_back(fd);
  }
}

bool IsPipeOrSocket(int fd) {
  struct stat st;
  return ::fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
}

// Whether an fd >= 3 can carry a byte stream the broker could pump.
bool CarriesBytes(int fd, int flags) {
  if (flags & O_PATH) return false;
  struct stat st;
  if (::fstat(fd, &st) != 0) return false;
  mode_t type = st.st_mode & S_IFMT;
  // Anonymous inodes (epoll, eventfd, signalfd, timerfd, pidfd) have no type.
  return type != 0 && type != S_IFDIR;
}

// Whether an argument names `fd` as a file: "/dev/fd/N" or "/proc/self/fd/N"
// anywhere in it (also "--file=/dev/fd/63").
bool NamedInArgv(const std::vector<std::string>& argv, int fd) {
  const std::string n = std::to_string(fd);
  for (const std::string& a : argv) {
    for (const char* prefix : {"/dev/fd/", "/proc/self/fd/"}) {
      std::string needle = prefix + n;
      for (size_t at = a.find(needle); at != std::string::npos; at = a.find(needle, at + 1)) {
        size_t end = at + needle.size();
        if (end == a.size() || a[end] < '0' || a[end] > '9') return true;
      }
    }
  }
  return false;
}

}  // namespace

OpenFds CollectOpenFds(const std::vector<std::string>& argv) {
  OpenFds r;
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) < 0) continue;
    wire::Fd f;
    f.fd = static_cast<uint32_t>(fd);
    f.to_child = fd == 0;
    if (::isatty(fd)) {
      f.mode = wire::Fd::Mode::kTerminal;
      if (r.first_terminal < 0) r.first_terminal = fd;
      if (fd == 0) r.stdin_terminal = true;
    } else {
      r.passed.push_back(fd);
      struct stat st;
      if (fd == 1 && ::fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
        r.stdout_to_process = true;
      }
    }
    r.fds.push_back(f);
  }

  std::vector<int> high;
  if (!ListProcFds(&high)) {
    high.clear();
    ProbeFds(&high);
  }
  for (int fd : high) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || !CarriesBytes(fd, flags)) continue;
    if ((flags & O_ACCMODE) == O_RDONLY && IsPipeOrSocket(fd) && !NamedInArgv(argv, fd)) continue;
    if (r.passed.size() >= wire::kMaxPassedFds) {
      ++r.dropped;
      continue;
    }
    wire::Fd f;
    f.fd = static_cast<uint32_t>(fd);
    f.to_child = (flags & O_ACCMODE) == O_RDONLY;
    r.fds.push_back(f);
    r.passed.push_back(fd);
  }
  return r;
}

}  // namespace mproxy::shim
