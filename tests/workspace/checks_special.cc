// ws_conformance checks on the rest: fallocate, mmap, path errors, file
// locks, and the *at calls that coreutils and find are built on.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "tests/workspace/conformance.h"

namespace ws {
namespace {

constexpr off_t kMiB = off_t{1024} * 1024;

// ---- fallocate ----------------------------------------------------------------

void FallocateOrSkip(int fd, int mode, off_t offset, off_t length, std::string_view what) {
  const int rc = ::fallocate(fd, mode, offset, length);
  if (rc < 0 && errno == EOPNOTSUPP) Skip("fallocate mode not supported (EOPNOTSUPP)");
  ExpectOk(rc, what);
}

void FallocateExtends(const Scratch&) {
  UniqueFd fd = OpenOk("f", O_RDWR | O_CREAT);
  FallocateOrSkip(fd.get(), 0, 0, kMiB, "fallocate(0, 1 MiB)");
  ExpectEq(FstatOk(fd.get()).st_size, kMiB, "size after fallocate(mode 0)");
  ExpectBytes(PreadExactly(fd.get(), 8192, kMiB - 8192), std::string(8192, '\0'),
              "allocated range");
  ExpectOk(::pwrite(fd.get(), "data", 4, 100), "pwrite into the allocated range");
  FallocateOrSkip(fd.get(), 0, kMiB, 4096, "fallocate past the end");
  ExpectEq(StatOk("f").st_size, kMiB + 4096, "size after the second fallocate");
  ExpectBytes(PreadExactly(fd.get(), 4, 100), "data", "data after the second fallocate");
}

void FallocateKeepSize(const Scratch&) {
  WriteFile("f", std::string(100, 'k'));
  UniqueFd fd = OpenOk("f", O_RDWR);
  FallocateOrSkip(fd.get(), FALLOC_FL_KEEP_SIZE, 0, kMiB, "fallocate(KEEP_SIZE, 1 MiB)");
  ExpectEq(FstatOk(fd.get()).st_size, 100, "size after fallocate(KEEP_SIZE)");
  ExpectBytes(ReadFile("f"), std::string(100, 'k'), "content after fallocate(KEEP_SIZE)");
}

void PunchHole(const Scratch&) {
  std::string want(65536, 'x');
  WriteFile("f", want);
  UniqueFd fd = OpenOk("f", O_RDWR);
  FallocateOrSkip(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192,
                  "fallocate(PUNCH_HOLE, 4096, 8192)");
  want.replace(4096, 8192, std::string(8192, '\0'));
  // An unaligned hole zeroes exactly its bytes.
  FallocateOrSkip(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 20000, 100,
                  "fallocate(PUNCH_HOLE, 20000, 100)");
  want.replace(20000, 100, std::string(100, '\0'));
  ExpectEq(FstatOk(fd.get()).st_size, 65536, "size after punching holes");
  ExpectBytes(PreadExactly(fd.get(), 65536, 0), want, "content after punching holes");
  fd.Reset();
  ExpectBytes(ReadFile("f"), want, "content through a new fd");
}

// ---- mmap ---------------------------------------------------------------------

// Owns one mapping.
class Mapping {
 public:
  Mapping(size_t length, int prot, int flags, int fd) : length_(length) {
    address_ = ::mmap(nullptr, length, prot, flags, fd, 0);
    if (address_ == MAP_FAILED) {
      const int err = errno;
      Fail("expected mmap to succeed, got " + ErrnoName(err));
    }
  }
  ~Mapping() { ::munmap(address_, length_); }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  char* bytes() const { return static_cast<char*>(address_); }

 private:
  void* address_ = nullptr;
  size_t length_;
};

void MmapSharedWrite(const Scratch&) {
  UniqueFd fd = OpenOk("f", O_RDWR | O_CREAT);
  ExpectOk(::ftruncate(fd.get(), 8192), "ftruncate(8192)");
  {
    Mapping map(8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get());
    std::memcpy(map.bytes() + 100, "mapped", 6);
    std::memcpy(map.bytes() + 5000, "second page", 11);
    ExpectOk(::msync(map.bytes(), 8192, MS_SYNC), "msync(MS_SYNC)");
    ExpectBytes(PreadExactly(fd.get(), 6, 100), "mapped", "read() while mapped");
  }
  ExpectBytes(PreadExactly(fd.get(), 11, 5000), "second page", "read() after munmap");
  fd.Reset();
  std::string want(8192, '\0');
  want.replace(100, 6, "mapped");
  want.replace(5000, 11, "second page");
  ExpectBytes(ReadFile("f"), want, "file through a new fd");
  ExpectEq(StatOk("f").st_size, 8192, "size after writing through the mapping");
}

void MmapReadOnly(const Scratch&) {
  const std::string data = PatternBytes(100000, 11);
  WriteFile("f", data);
  UniqueFd fd = OpenOk("f", O_RDONLY);
  {
    Mapping map(data.size(), PROT_READ, MAP_SHARED, fd.get());
    ExpectBytes(std::string_view(map.bytes(), data.size()), data, "MAP_SHARED read mapping");
  }
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t mapped = (data.size() + page - 1) / page * page;
  Mapping map(mapped, PROT_READ, MAP_PRIVATE, fd.get());
  ExpectBytes(std::string_view(map.bytes(), data.size()), data, "MAP_PRIVATE read mapping");
  // The rest of the last page reads as zeros.
  ExpectBytes(std::string_view(map.bytes() + data.size(), mapped - data.size()),
              std::string(mapped - data.size(), '\0'), "mapping past EOF in the last page");
}

void MmapSeesLaterWrite(const Scratch&) {
  WriteFile("f", std::string(4096, 'o'));
  UniqueFd fd = OpenOk("f", O_RDWR);
  Mapping map(4096, PROT_READ, MAP_SHARED, fd.get());
  ExpectBytes(std::string_view(map.bytes(), 3), "ooo", "mapping before the write");
  ExpectOk(::pwrite(fd.get(), "NEW", 3, 0), "pwrite(NEW)");
  ExpectBytes(std::string_view(map.bytes(), 3), "NEW", "mapping after a write through the fd");
}

// ---- path errors --------------------------------------------------------------

void NameTooLong(const Scratch&) {
  const std::string name(300, 'n');
  ExpectOpenErrno(name.c_str(), O_WRONLY | O_CREAT, ENAMETOOLONG,
                  "open(O_CREAT) of a 300-byte name");
  struct stat st {};
  ExpectErrno(::stat(name.c_str(), &st), ENAMETOOLONG, "stat of a 300-byte name");
  ExpectErrno(::mkdir(name.c_str(), 0755), ENAMETOOLONG, "mkdir of a 300-byte name");
  WriteFile("f", "x");
  ExpectErrno(::rename("f", name.c_str()), ENAMETOOLONG, "rename to a 300-byte name");
  ExpectErrno(::symlink("f", name.c_str()), ENAMETOOLONG, "symlink at a 300-byte name");
}

void Name255(const Scratch&) {
  const std::string name(255, 'm');
  WriteFile(name.c_str(), "longest");
  ExpectBytes(ReadFile(name.c_str()), "longest", "content under a 255-byte name");
  ExpectNames(ListDir("."), {".", "..", name}, "readdir with a 255-byte name");
  ExpectOk(::unlink(name.c_str()), "unlink of a 255-byte name");
}

void ThroughMissingDir(const Scratch&) {
  ExpectOpenErrno("missing/f", O_RDONLY, ENOENT, "open through a missing directory");
  ExpectOpenErrno("missing/f", O_WRONLY | O_CREAT, ENOENT,
                  "open(O_CREAT) through a missing directory");
  struct stat st {};
  ExpectErrno(::stat("missing/f", &st), ENOENT, "stat through a missing directory");
  ExpectErrno(::mkdir("missing/d", 0755), ENOENT, "mkdir through a missing directory");
  WriteFile("f", "x");
  ExpectErrno(::rename("f", "missing/g"), ENOENT, "rename into a missing directory");
}

void ThroughFile(const Scratch&) {
  WriteFile("f", "x");
  ExpectOpenErrno("f/x", O_RDONLY, ENOTDIR, "open through a file");
  ExpectOpenErrno("f/x", O_WRONLY | O_CREAT, ENOTDIR, "open(O_CREAT) through a file");
  struct stat st {};
  ExpectErrno(::stat("f/x", &st), ENOTDIR, "stat through a file");
  ExpectErrno(::mkdir("f/d", 0755), ENOTDIR, "mkdir through a file");
  ExpectErrno(::stat("f/", &st), ENOTDIR, "stat of a file with a trailing slash");
  ExpectOpenErrno("f/", O_RDONLY, ENOTDIR, "open of a file with a trailing slash");
}

// ---- locks --------------------------------------------------------------------

// Runs `child` in a forked process and returns its exit status (or -1).
int InChild(int (*child)(const char* path), const char* path) {
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid < 0) ExpectOk(-1, "fork");
  if (pid == 0) ::_exit(child(path));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) ExpectOk(-1, "waitpid");
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Exit statuses of the lock probe.
constexpr int kLockRefused = 0;
constexpr int kLockGranted = 1;
constexpr int kProbeError = 2;

int ProbeWriteLock(const char* path) {
  const int fd = ::open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return kProbeError;
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  if (::fcntl(fd, F_SETLK, &lock) == 0) return kLockGranted;
  return errno == EAGAIN || errno == EACCES ? kLockRefused : kProbeError;
}

void FcntlLock(const Scratch&) {
  WriteFile("f", "locked");
  UniqueFd fd = OpenOk("f", O_RDWR);
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  ExpectOk(::fcntl(fd.get(), F_SETLK, &lock), "fcntl(F_SETLK, F_WRLCK)");
  ExpectEq(InChild(ProbeWriteLock, "f"), kLockRefused,
           "another process's F_SETLK status (0 refused, 1 granted, 2 error)");
  lock.l_type = F_UNLCK;
  ExpectOk(::fcntl(fd.get(), F_SETLK, &lock), "fcntl(F_SETLK, F_UNLCK)");
  ExpectEq(InChild(ProbeWriteLock, "f"), kLockGranted,
           "another process's F_SETLK status after unlock (0 refused, 1 granted, 2 error)");
}

void Flock(const Scratch&) {
  WriteFile("f", "locked");
  UniqueFd one = OpenOk("f", O_RDWR);
  UniqueFd two = OpenOk("f", O_RDWR);
  ExpectOk(::flock(one.get(), LOCK_EX), "flock(LOCK_EX)");
  ExpectErrno(::flock(two.get(), LOCK_EX | LOCK_NB), EWOULDBLOCK,
              "flock(LOCK_EX|LOCK_NB) on a second open file");
  ExpectOk(::flock(one.get(), LOCK_UN), "flock(LOCK_UN)");
  ExpectOk(::flock(two.get(), LOCK_EX | LOCK_NB), "flock(LOCK_EX|LOCK_NB) after unlock");
}

// ---- *at calls ----------------------------------------------------------------

void AtCalls(const Scratch&) {
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  UniqueFd dir = OpenOk("d", O_RDONLY | O_DIRECTORY);
  const int d = dir.get();
  {
    UniqueFd fd(::openat(d, "f", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    ExpectOk(fd.get(), "openat(d, f, O_CREAT)");
    WriteAll(fd.get(), "at");
  }
  struct stat st {};
  ExpectOk(::fstatat(d, "f", &st, 0), "fstatat(d, f)");
  ExpectEq(st.st_size, 2, "size by fstatat");
  ExpectOk(::mkdirat(d, "sub", 0755), "mkdirat(d, sub)");
  ExpectOk(::renameat(d, "f", d, "sub/g"), "renameat(d, f, d, sub/g)");
  ExpectOk(::linkat(d, "sub/g", d, "h", 0), "linkat(d, sub/g, d, h)");
  ExpectOk(::symlinkat("sub/g", d, "s"), "symlinkat(sub/g, d, s)");
  char buffer[64];
  const long n = ExpectOk(::readlinkat(d, "s", buffer, sizeof buffer), "readlinkat(d, s)");
  ExpectBytes(std::string_view(buffer, static_cast<size_t>(n)), "sub/g", "readlinkat");
  ExpectOk(::fchmodat(d, "h", 0600, 0), "fchmodat(d, h, 0600)");
  ExpectMode(StatOk("d/sub/g").st_mode, 0600, "mode after fchmodat through the link");
  ExpectOk(::faccessat(d, "s", R_OK, 0), "faccessat(d, s, R_OK)");
  ExpectBytes(ReadFile("d/s"), "at", "content through the symlink made by symlinkat");
  ExpectOk(::unlinkat(d, "s", 0), "unlinkat(d, s)");
  ExpectOk(::unlinkat(d, "h", 0), "unlinkat(d, h)");
  ExpectErrno(::unlinkat(d, "sub", 0), EISDIR, "unlinkat of a directory without AT_REMOVEDIR");
  ExpectErrno(::unlinkat(d, "sub", AT_REMOVEDIR), ENOTEMPTY, "unlinkat(AT_REMOVEDIR) non-empty");
  ExpectOk(::unlinkat(d, "sub/g", 0), "unlinkat(d, sub/g)");
  ExpectOk(::unlinkat(d, "sub", AT_REMOVEDIR), "unlinkat(d, sub, AT_REMOVEDIR)");
  ExpectNames(ListDir("d"), {".", ".."}, "readdir after the *at calls");
}

}  // namespace

std::vector<Check> SpecialChecks() {
  return {
      {"fallocate.extends", FallocateExtends},
      {"fallocate.keep_size", FallocateKeepSize},
      {"fallocate.punch_hole", PunchHole},
      {"mmap.shared_write_msync", MmapSharedWrite},
      {"mmap.read_only_matches", MmapReadOnly},
      {"mmap.sees_later_write", MmapSeesLaterWrite},
      {"err.name_300_enametoolong", NameTooLong},
      {"err.name_255_ok", Name255},
      {"err.through_missing_dir_enoent", ThroughMissingDir},
      {"err.through_file_enotdir", ThroughFile},
      {"lock.fcntl_setlk", FcntlLock},
      {"lock.flock", Flock},
      {"at.calls", AtCalls},
  };
}

}  // namespace ws
