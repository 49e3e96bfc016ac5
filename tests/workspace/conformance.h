// The pieces every ws_conformance check shares: how a check reports a failure
// or a skip, expectation helpers that name errnos, and small file helpers.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <concepts>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/unique_fd.h"

namespace ws {

using mproxy::UniqueFd;

// Thrown by a check that saw something other than what Linux on ext4/tmpfs
// gives; `message` reads "expected X, got Y".
struct CheckFailed {
  std::string message;
};

// Thrown by a check whose feature the filesystem under test genuinely lacks.
struct CheckSkipped {
  std::string reason;
};

// Where a check runs: the process's working directory is `dir` (fresh and
// empty), so checks use short relative paths; `abs_dir` is its absolute path.
struct Scratch {
  std::string abs_dir;
};

struct Check {
  std::string name;
  void (*run)(const Scratch& scratch);
};

// The check groups, in the order they run.
std::vector<Check> FileChecks();     // open flags, read/write at offsets
std::vector<Check> TreeChecks();     // directories, rename, links
std::vector<Check> MetaChecks();     // metadata, xattrs, statfs
std::vector<Check> SpecialChecks();  // fallocate, mmap, path errors, locks, *at

// Runs every check in its own subdirectory of `root` (which must exist and
// is left in place) and in its own child process, so a crash or a hang (60 s)
// fails that check alone. Prints one line per check; returns the FAIL count.
int RunChecks(const std::string& root, const std::vector<Check>& checks);

// ---- reporting ------------------------------------------------------------

[[noreturn]] void Fail(std::string message);
[[noreturn]] void Skip(std::string reason);

// "ENOENT" for ENOENT; "errno 1234" for numbers libc has no name for.
std::string ErrnoName(int err);

// `bytes` as a C-like quoted string, shortened past 48 bytes.
std::string Quote(std::string_view bytes);

// "0644"
std::string Octal(unsigned long value);

// Expects a libc call to have succeeded (rc >= 0) and returns rc. `what`
// names the call, e.g. "open(f, O_RDONLY)". Read errno before anything else
// runs, so pass string literals or strings built before the call.
long ExpectOk(long rc, std::string_view what);

// Expects a libc call to have failed with `want`.
void ExpectErrno(long rc, int want, std::string_view what);

// Like ExpectErrno for open(): closes the fd if open unexpectedly succeeded.
void ExpectOpenErrno(const char* path, int flags, int want, std::string_view what);

template <std::integral Got, std::integral Want>
void ExpectEq(Got got, Want want, std::string_view what) {
  if (std::cmp_equal(got, want)) return;
  Fail("expected " + std::string(what) + " = " + std::to_string(want) + ", got " +
       std::to_string(got));
}

void ExpectTrue(bool condition, std::string_view what, std::string_view got);
void ExpectBytes(std::string_view got, std::string_view want, std::string_view what);
// Compares permission bits and set-id/sticky bits (mode & 07777).
void ExpectMode(mode_t got, mode_t want, std::string_view what);
// Compares the file type (mode & S_IFMT) and names both types on mismatch.
void ExpectType(mode_t got, mode_t want_type, std::string_view what);
void ExpectTime(const timespec& got, const timespec& want, std::string_view what);
void ExpectNames(std::vector<std::string> got, std::vector<std::string> want,
                 std::string_view what);

// ---- file helpers (each fails the check when a call fails) -----------------

UniqueFd OpenOk(const char* path, int flags, mode_t mode = 0644);
void WriteAll(int fd, std::string_view data);
std::string PreadExactly(int fd, size_t length, off_t offset);
// Reads from `fd`'s current offset to EOF.
std::string ReadToEnd(int fd);
// Creates or truncates `path` (mode 0644 before umask) and writes `data`.
void WriteFile(const char* path, std::string_view data);
std::string ReadFile(const char* path);
struct stat StatOk(const char* path);
struct stat LstatOk(const char* path);
struct stat FstatOk(int fd);
// Every name readdir returns for `path`, including "." and "..", sorted.
std::vector<std::string> ListDir(const char* path);
// Sets atime and mtime of `path` to the given second counts (ns = 0).
void SetTimes(const char* path, time_t atime_sec, time_t mtime_sec);

// Deterministic pseudo-random bytes, so failures reproduce.
std::string PatternBytes(size_t size, unsigned seed);
// FNV-1a, for naming contents in messages.
unsigned long long Fnv1a(std::string_view bytes);

}  // namespace ws
