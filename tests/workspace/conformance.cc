// ws_conformance's shared helpers and the runner that gives each check its
// own scratch directory and process and turns what it throws into one line.
#include "tests/workspace/conformance.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <exception>

namespace ws {

void Fail(std::string message) { throw CheckFailed{std::move(message)}; }

void Skip(std::string reason) { throw CheckSkipped{std::move(reason)}; }

std::string ErrnoName(int err) {
  // strerrorname_np: glibc 2.32+. EOPNOTSUPP and ENOTSUP are one number on
  // Linux; glibc names it EOPNOTSUPP.
  if (const char* name = strerrorname_np(err)) return name;
  return "errno " + std::to_string(err);
}

std::string Quote(std::string_view bytes) {
  constexpr size_t kShown = 48;
  std::string out = "\"";
  for (size_t i = 0; i < bytes.size() && i < kShown; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  out += '"';
  if (bytes.size() > kShown) out += "... (" + std::to_string(bytes.size()) + " bytes)";
  return out;
}

std::string Octal(unsigned long value) {
  char text[32];
  std::snprintf(text, sizeof text, "0%lo", value);
  return text;
}

long ExpectOk(long rc, std::string_view what) {
  if (rc < 0) {
    const int err = errno;
    Fail("expected " + std::string(what) + " to succeed, got " + ErrnoName(err));
  }
  return rc;
}

void ExpectErrno(long rc, int want, std::string_view what) {
  if (rc >= 0) Fail("expected " + ErrnoName(want) + " from " + std::string(what) + ", got success");
  const int err = errno;
  if (err != want) {
    Fail("expected " + ErrnoName(want) + " from " + std::string(what) + ", got " + ErrnoName(err));
  }
}

void ExpectOpenErrno(const char* path, int flags, int want, std::string_view what) {
  UniqueFd fd(::open(path, flags | O_CLOEXEC, 0644));
  const int err = errno;
  if (fd) Fail("expected " + ErrnoName(want) + " from " + std::string(what) + ", got success");
  if (err != want) {
    Fail("expected " + ErrnoName(want) + " from " + std::string(what) + ", got " + ErrnoName(err));
  }
}

void ExpectTrue(bool condition, std::string_view what, std::string_view got) {
  if (!condition) Fail("expected " + std::string(what) + ", got " + std::string(got));
}

void ExpectBytes(std::string_view got, std::string_view want, std::string_view what) {
  if (got == want) return;
  if (got.size() <= 48 && want.size() <= 48) {
    Fail("expected " + std::string(what) + " = " + Quote(want) + ", got " + Quote(got));
  }
  const auto [got_it, want_it] = std::mismatch(got.begin(), got.end(), want.begin(), want.end());
  const size_t at = static_cast<size_t>(got_it - got.begin());
  char hashes[64];
  std::snprintf(hashes, sizeof hashes, " (fnv %016llx vs %016llx)", Fnv1a(want), Fnv1a(got));
  Fail("expected " + std::string(what) + " to be " + std::to_string(want.size()) +
       " known bytes, got " + std::to_string(got.size()) + " bytes differing from offset " +
       std::to_string(at) + hashes);
}

void ExpectMode(mode_t got, mode_t want, std::string_view what) {
  if ((got & 07777) == want) return;
  Fail("expected " + std::string(what) + " = " + Octal(want) + ", got " + Octal(got & 07777));
}

namespace {

const char* TypeName(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return "regular file";
    case S_IFDIR:
      return "directory";
    case S_IFLNK:
      return "symlink";
    case S_IFIFO:
      return "fifo";
    case S_IFSOCK:
      return "socket";
    case S_IFCHR:
      return "character device";
    case S_IFBLK:
      return "block device";
    default:
      return "unknown type";
  }
}

std::string TimeText(const timespec& t) {
  char text[64];
  std::snprintf(text, sizeof text, "%lld.%09ld", static_cast<long long>(t.tv_sec), t.tv_nsec);
  return text;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out = "[";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ", ";
    out += Quote(names[i]);
  }
  return out + "]";
}

}  // namespace

void ExpectType(mode_t got, mode_t want_type, std::string_view what) {
  if ((got & S_IFMT) == want_type) return;
  Fail("expected " + std::string(what) + " to be a " + TypeName(want_type) + ", got a " +
       TypeName(got));
}

void ExpectTime(const timespec& got, const timespec& want, std::string_view what) {
  if (got.tv_sec == want.tv_sec && got.tv_nsec == want.tv_nsec) return;
  Fail("expected " + std::string(what) + " = " + TimeText(want) + ", got " + TimeText(got));
}

void ExpectNames(std::vector<std::string> got, std::vector<std::string> want,
                 std::string_view what) {
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  if (got == want) return;
  // Name only the differences: the lists can hold a thousand entries.
  std::vector<std::string> missing, extra;
  std::set_difference(want.begin(), want.end(), got.begin(), got.end(),
                      std::back_inserter(missing));
  std::set_difference(got.begin(), got.end(), want.begin(), want.end(), std::back_inserter(extra));
  if (missing.size() > 8) missing.resize(8);
  if (extra.size() > 8) extra.resize(8);
  Fail("expected " + std::string(what) + " to be " + std::to_string(want.size()) + " names, got " +
       std::to_string(got.size()) + " (missing " + JoinNames(missing) +
       ", unexpected or repeated " + JoinNames(extra) + ")");
}

UniqueFd OpenOk(const char* path, int flags, mode_t mode) {
  const std::string what = "open(" + Quote(path) + ")";
  UniqueFd fd(static_cast<int>(ExpectOk(::open(path, flags | O_CLOEXEC, mode), what)));
  return fd;
}

void WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    ExpectOk(n, "write");
    if (n == 0) Fail("expected write to make progress, got 0 bytes written");
    data.remove_prefix(static_cast<size_t>(n));
  }
}

std::string PreadExactly(int fd, size_t length, off_t offset) {
  std::string out(length, '\0');
  size_t done = 0;
  while (done < length) {
    const ssize_t n =
        ::pread(fd, out.data() + done, length - done, offset + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    ExpectOk(n, "pread");
    if (n == 0) {
      Fail("expected pread of " + std::to_string(length) + " bytes at " + std::to_string(offset) +
           ", got EOF after " + std::to_string(done));
    }
    done += static_cast<size_t>(n);
  }
  return out;
}

std::string ReadToEnd(int fd) {
  std::string out;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    ExpectOk(n, "read");
    if (n == 0) return out;
    out.append(buffer, static_cast<size_t>(n));
  }
}

void WriteFile(const char* path, std::string_view data) {
  UniqueFd fd = OpenOk(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  WriteAll(fd.get(), data);
  ExpectOk(::close(fd.Release()), "close after write");
}

std::string ReadFile(const char* path) {
  UniqueFd fd = OpenOk(path, O_RDONLY);
  return ReadToEnd(fd.get());
}

struct stat StatOk(const char* path) {
  struct stat st {};
  const std::string what = "stat(" + Quote(path) + ")";
  ExpectOk(::stat(path, &st), what);
  return st;
}

struct stat LstatOk(const char* path) {
  struct stat st {};
  const std::string what = "lstat(" + Quote(path) + ")";
  ExpectOk(::lstat(path, &st), what);
  return st;
}

struct stat FstatOk(int fd) {
  struct stat st {};
  ExpectOk(::fstat(fd, &st), "fstat");
  return st;
}

std::vector<std::string> ListDir(const char* path) {
  const std::string what = "opendir(" + Quote(path) + ")";
  DIR* dir = ::opendir(path);
  if (dir == nullptr) ExpectOk(-1, what);
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    const dirent* entry = ::readdir(dir);
    if (entry == nullptr) break;
    names.emplace_back(entry->d_name);
  }
  const int err = errno;
  ::closedir(dir);
  if (err != 0) Fail("expected readdir(" + Quote(path) + ") to succeed, got " + ErrnoName(err));
  std::sort(names.begin(), names.end());
  return names;
}

void SetTimes(const char* path, time_t atime_sec, time_t mtime_sec) {
  const timespec times[2] = {{atime_sec, 0}, {mtime_sec, 0}};
  ExpectOk(::utimensat(AT_FDCWD, path, times, 0), "utimensat with explicit times");
}

std::string PatternBytes(size_t size, unsigned seed) {
  std::string out(size, '\0');
  unsigned long long state = 0x9e3779b97f4a7c15ULL ^ seed;
  for (size_t i = 0; i < size; ++i) {
    // xorshift64: cheap, deterministic, and no long runs of equal bytes.
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    out[i] = static_cast<char>(state >> 56);
  }
  return out;
}

unsigned long long Fnv1a(std::string_view bytes) {
  unsigned long long hash = 0xcbf29ce484222325ULL;
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

// ---- runner -----------------------------------------------------------------

namespace {

// Removes `name` in `parent_fd` and everything below it, without following
// symlinks. Returns 0, or the errno of the first call that failed.
int RemoveTree(int parent_fd, const char* name) {
  struct stat st {};
  if (::fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return errno;
  if (!S_ISDIR(st.st_mode)) return ::unlinkat(parent_fd, name, 0) < 0 ? errno : 0;
  // A check may leave a directory without write or search permission.
  ::fchmodat(parent_fd, name, 0700, 0);
  const int fd = ::openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno;
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    const int err = errno;
    ::close(fd);
    return err;
  }
  int first_error = 0;
  // Unlinking while reading a directory may make readdir skip entries, so
  // collect the names first.
  std::vector<std::string> names;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string_view entry_name = entry->d_name;
    if (entry_name != "." && entry_name != "..") names.emplace_back(entry_name);
  }
  for (const std::string& child : names) {
    const int err = RemoveTree(::dirfd(dir), child.c_str());
    if (first_error == 0) first_error = err;
  }
  ::closedir(dir);
  if (::unlinkat(parent_fd, name, AT_REMOVEDIR) < 0 && first_error == 0) first_error = errno;
  return first_error;
}

// Exit statuses of the process that runs one check.
constexpr int kExitOk = 0;
constexpr int kExitFail = 1;
constexpr int kExitSkip = 3;

// A check that hangs (a stuck mount) fails instead of stalling the run.
constexpr unsigned kCheckTimeoutSeconds = 60;

// Runs in the forked child: the check, its output line, its exit status.
[[noreturn]] void RunInChild(const Check& check, const Scratch& scratch) {
  ::alarm(kCheckTimeoutSeconds);
  ::umask(022);
  int status = kExitFail;
  if (::chdir(scratch.abs_dir.c_str()) < 0) {
    std::printf("FAIL %s: expected to enter %s, got %s\n", check.name.c_str(),
                scratch.abs_dir.c_str(), ErrnoName(errno).c_str());
  } else {
    try {
      check.run(scratch);
      std::printf("ok %s\n", check.name.c_str());
      status = kExitOk;
    } catch (const CheckFailed& failed) {
      std::printf("FAIL %s: %s\n", check.name.c_str(), failed.message.c_str());
    } catch (const CheckSkipped& skipped) {
      std::printf("skip %s: %s\n", check.name.c_str(), skipped.reason.c_str());
      status = kExitSkip;
    } catch (const std::exception& e) {
      std::printf("FAIL %s: expected no exception, got %s\n", check.name.c_str(), e.what());
    }
  }
  std::fflush(stdout);
  ::_exit(status);
}

// Runs one check in a child process, so a crash (SIGBUS from a mapping, an
// abort) or a hang fails that check alone. Returns the child's exit status,
// or kExitFail after printing the FAIL line for a child that did not exit.
int RunIsolated(const Check& check, const Scratch& scratch) {
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::printf("FAIL %s: expected fork to succeed, got %s\n", check.name.c_str(),
                ErrnoName(errno).c_str());
    return kExitFail;
  }
  if (pid == 0) RunInChild(check, scratch);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      std::printf("FAIL %s: expected waitpid to succeed, got %s\n", check.name.c_str(),
                  ErrnoName(errno).c_str());
      return kExitFail;
    }
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  const int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  const char* name = sigabbrev_np(sig);
  if (sig == SIGALRM) {
    std::printf("FAIL %s: expected the check to finish within %u s, got a timeout\n",
                check.name.c_str(), kCheckTimeoutSeconds);
  } else {
    std::printf("FAIL %s: expected the check to exit, got killed by SIG%s\n", check.name.c_str(),
                name != nullptr ? name : std::to_string(sig).c_str());
  }
  return kExitFail;
}

}  // namespace

int RunChecks(const std::string& root, const std::vector<Check>& checks) {
  const int root_fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) {
    std::printf("FAIL setup: expected open(%s) to succeed, got %s\n", root.c_str(),
                ErrnoName(errno).c_str());
    return 1;
  }
  int failures = 0, passed = 0, skipped = 0;
  for (size_t i = 0; i < checks.size(); ++i) {
    const Check& check = checks[i];
    char dir_name[32];
    std::snprintf(dir_name, sizeof dir_name, "%03zu", i);
    const Scratch scratch{root + "/" + dir_name};
    if (::mkdirat(root_fd, dir_name, 0755) < 0) {
      std::printf("FAIL %s: expected a scratch directory %s, got %s\n", check.name.c_str(),
                  scratch.abs_dir.c_str(), ErrnoName(errno).c_str());
      ++failures;
      continue;
    }
    switch (RunIsolated(check, scratch)) {
      case kExitOk:
        ++passed;
        break;
      case kExitSkip:
        ++skipped;
        break;
      default:
        ++failures;
        break;
    }
    // Whatever the check left behind must go, even after a failure.
    if (const int err = RemoveTree(root_fd, dir_name); err != 0) {
      std::printf("FAIL %s.cleanup: expected the scratch directory to be removable, got %s\n",
                  check.name.c_str(), ErrnoName(err).c_str());
      ++failures;
    }
  }
  ::close(root_fd);
  std::printf("# %d ok, %d skipped, %d failed\n", passed, skipped, failures);
  return failures;
}

}  // namespace ws
