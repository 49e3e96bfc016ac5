// ws_conformance checks on metadata: modes, timestamps, types, ownership,
// access(), user xattrs and statfs.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <functional>
#include <string>

#include "tests/workspace/conformance.h"

namespace ws {
namespace {

// Times far from "now", so an update shows whatever the clock says.
constexpr time_t kOldSeconds = 1000000000;  // 2001-09-09

// ---- modes, times, types, owners ---------------------------------------------

void Chmod(const Scratch&) {
  WriteFile("f", "x");
  for (const mode_t mode : {0, 0777, 0640, 0755, 0400, 0600, 0111, 0644}) {
    const std::string what = "mode after chmod(" + Octal(mode) + ")";
    ExpectOk(::chmod("f", mode), "chmod(f)");
    ExpectMode(StatOk("f").st_mode, mode, what);
  }
  UniqueFd fd = OpenOk("f", O_RDONLY);
  ExpectOk(::fchmod(fd.get(), 0700), "fchmod(0700)");
  ExpectMode(FstatOk(fd.get()).st_mode, 0700, "mode after fchmod(0700) (fstat)");
  ExpectMode(StatOk("f").st_mode, 0700, "mode after fchmod(0700) (stat)");
  ExpectType(StatOk("f").st_mode, S_IFREG, "f after the chmods");
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  for (const mode_t mode : {0700, 0711, 0750, 0755}) {
    const std::string what = "directory mode after chmod(" + Octal(mode) + ")";
    ExpectOk(::chmod("d", mode), "chmod(d)");
    ExpectMode(StatOk("d").st_mode, mode, what);
  }
}

void UtimensatExplicit(const Scratch&) {
  WriteFile("f", "x");
  const timespec times[2] = {{1000000000, 123456789}, {1234567890, 987654321}};
  ExpectOk(::utimensat(AT_FDCWD, "f", times, 0), "utimensat(f) with ns times");
  const struct stat st = StatOk("f");
  ExpectTime(st.st_atim, times[0], "atime");
  ExpectTime(st.st_mtim, times[1], "mtime");
  UniqueFd fd = OpenOk("f", O_RDONLY);
  const timespec later[2] = {{1300000000, 1}, {1400000000, 999999999}};
  ExpectOk(::futimens(fd.get(), later), "futimens");
  ExpectTime(FstatOk(fd.get()).st_atim, later[0], "atime after futimens");
  ExpectTime(StatOk("f").st_mtim, later[1], "mtime after futimens");
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  ExpectOk(::utimensat(AT_FDCWD, "d", times, 0), "utimensat(d) with ns times");
  ExpectTime(StatOk("d").st_mtim, times[1], "mtime of a directory");
}

void UtimensatSymlinkNofollow(const Scratch&) {
  WriteFile("t", "x");
  SetTimes("t", kOldSeconds, kOldSeconds);
  ExpectOk(::symlink("t", "link"), "symlink(t, link)");
  const timespec times[2] = {{1100000000, 5}, {1200000000, 6}};
  ExpectOk(::utimensat(AT_FDCWD, "link", times, AT_SYMLINK_NOFOLLOW),
           "utimensat(AT_SYMLINK_NOFOLLOW) on a symlink");
  ExpectTime(LstatOk("link").st_mtim, times[1], "mtime of the symlink");
  ExpectTime(StatOk("t").st_mtim, timespec{kOldSeconds, 0}, "mtime of the symlink's target");
}

void UtimeNow(const Scratch&) {
  WriteFile("f", "x");
  SetTimes("f", kOldSeconds, kOldSeconds);
  const timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
  ExpectOk(::utimensat(AT_FDCWD, "f", now, 0), "utimensat(UTIME_NOW, UTIME_NOW)");
  const struct stat st = StatOk("f");
  // The server's clock sets the time: allow a day of skew, not a stale value.
  const time_t local_now = std::time(nullptr);
  const std::string window = "within a day of " + std::to_string(local_now);
  ExpectTrue(st.st_mtime > local_now - 86400 && st.st_mtime < local_now + 86400,
             "mtime after UTIME_NOW " + window, std::to_string(st.st_mtime));
  ExpectTrue(st.st_atime > local_now - 86400 && st.st_atime < local_now + 86400,
             "atime after UTIME_NOW " + window, std::to_string(st.st_atime));
  // utimensat(NULL) means both UTIME_NOW.
  SetTimes("f", kOldSeconds, kOldSeconds);
  ExpectOk(::utimensat(AT_FDCWD, "f", nullptr, 0), "utimensat(NULL)");
  ExpectTrue(StatOk("f").st_mtime > kOldSeconds, "mtime after utimensat(NULL) to move",
             "the old mtime");
}

void UtimeOmit(const Scratch&) {
  WriteFile("f", "x");
  const timespec a1{1100000000, 111}, m1{1200000000, 222};
  const timespec set[2] = {a1, m1};
  ExpectOk(::utimensat(AT_FDCWD, "f", set, 0), "utimensat with explicit times");
  const timespec m2{1250000000, 333};
  const timespec omit_atime[2] = {{0, UTIME_OMIT}, m2};
  ExpectOk(::utimensat(AT_FDCWD, "f", omit_atime, 0), "utimensat(UTIME_OMIT, t)");
  ExpectTime(StatOk("f").st_atim, a1, "atime kept by UTIME_OMIT");
  ExpectTime(StatOk("f").st_mtim, m2, "mtime set beside UTIME_OMIT");
  const timespec a2{1150000000, 444};
  const timespec omit_mtime[2] = {a2, {0, UTIME_OMIT}};
  ExpectOk(::utimensat(AT_FDCWD, "f", omit_mtime, 0), "utimensat(t, UTIME_OMIT)");
  ExpectTime(StatOk("f").st_atim, a2, "atime set beside UTIME_OMIT");
  ExpectTime(StatOk("f").st_mtim, m2, "mtime kept by UTIME_OMIT");
  const timespec omit_both[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
  ExpectOk(::utimensat(AT_FDCWD, "f", omit_both, 0), "utimensat(UTIME_OMIT, UTIME_OMIT)");
  ExpectTime(StatOk("f").st_mtim, m2, "mtime after omitting both");
}

void TruncateChangesMtime(const Scratch&) {
  WriteFile("f", "abc");
  SetTimes("f", kOldSeconds, kOldSeconds);
  ExpectOk(::truncate("f", 100), "truncate(f, 100)");
  ExpectTrue(StatOk("f").st_mtime > kOldSeconds, "truncate to move mtime", "the old mtime");
  SetTimes("f", kOldSeconds, kOldSeconds);
  UniqueFd fd = OpenOk("f", O_WRONLY);
  ExpectOk(::ftruncate(fd.get(), 10), "ftruncate(10)");
  ExpectTrue(FstatOk(fd.get()).st_mtime > kOldSeconds, "ftruncate to move mtime", "the old mtime");
}

void WriteChangesMtimeAndSize(const Scratch&) {
  WriteFile("f", "");
  SetTimes("f", kOldSeconds, kOldSeconds);
  UniqueFd fd = OpenOk("f", O_WRONLY);
  WriteAll(fd.get(), "0123456789");
  const struct stat open_st = FstatOk(fd.get());
  ExpectEq(open_st.st_size, 10, "size after write (fstat)");
  ExpectTrue(open_st.st_mtime > kOldSeconds, "write to move mtime (fstat)", "the old mtime");
  ExpectOk(::close(fd.Release()), "close");
  const struct stat st = StatOk("f");
  ExpectEq(st.st_size, 10, "size after write (stat)");
  ExpectTrue(st.st_mtime > kOldSeconds, "write to move mtime (stat)", "the old mtime");
}

void FileTypes(const Scratch&) {
  WriteFile("f", "x");
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  ExpectOk(::symlink("f", "l"), "symlink(f, l)");
  ExpectOk(::mkfifo("p", 0644), "mkfifo(p)");
  ExpectType(LstatOk("f").st_mode, S_IFREG, "f");
  ExpectType(LstatOk("d").st_mode, S_IFDIR, "d");
  ExpectType(LstatOk("l").st_mode, S_IFLNK, "l");
  ExpectType(StatOk("l").st_mode, S_IFREG, "l followed");
  ExpectType(LstatOk("p").st_mode, S_IFIFO, "p");
  ExpectMode(LstatOk("p").st_mode, 0644, "mode of the fifo");
  ExpectNames(ListDir("."), {".", "..", "d", "f", "l", "p"}, "readdir of the four types");
}

void ChownSelf(const Scratch&) {
  const uid_t uid = ::getuid();
  const gid_t gid = ::getgid();
  WriteFile("f", "x");
  ExpectOk(::chown("f", uid, gid), "chown to the own uid and gid");
  const struct stat st = StatOk("f");
  ExpectEq(st.st_uid, uid, "st_uid after chown");
  ExpectEq(st.st_gid, gid, "st_gid after chown");
  ExpectMode(st.st_mode, 0644, "mode after chown");
  ExpectOk(::chown("f", static_cast<uid_t>(-1), static_cast<gid_t>(-1)), "chown(-1, -1)");
  UniqueFd fd = OpenOk("f", O_RDONLY);
  ExpectOk(::fchown(fd.get(), uid, static_cast<gid_t>(-1)), "fchown to the own uid");
  ExpectOk(::symlink("f", "l"), "symlink(f, l)");
  ExpectOk(::lchown("l", uid, gid), "lchown of a symlink to the own ids");
  ExpectEq(LstatOk("l").st_uid, uid, "st_uid of the symlink");
}

// chown clears the set-user-ID bit, and the set-group-ID bit of a group
// executable, even when it changes nothing (chown(-1, -1)) and through an
// fd. The mount leaves that to the remote kernel (FUSE_HANDLE_KILLPRIV).
void ChownClearsSetId(const Scratch&) {
  const uid_t uid = ::getuid();
  const gid_t gid = ::getgid();
  struct Case {
    const char* what;
    std::function<int()> chown;
  };
  const Case cases[] = {
      {"chown(f, -1, -1)",
       [] { return ::chown("f", static_cast<uid_t>(-1), static_cast<gid_t>(-1)); }},
      {"chown to the own ids", [&] { return ::chown("f", uid, gid); }},
      {"fchown(-1, -1)",
       [] {
         UniqueFd fd = OpenOk("f", O_RDONLY);
         return ::fchown(fd.get(), static_cast<uid_t>(-1), static_cast<gid_t>(-1));
       }},
  };
  for (const Case& c : cases) {
    WriteFile("f", "x");
    ExpectOk(::chmod("f", 06755), "chmod 6755");
    ExpectMode(StatOk("f").st_mode, 06755, std::string("mode before ") + c.what);
    ExpectOk(c.chown(), c.what);
    ExpectMode(StatOk("f").st_mode, 0755, std::string("mode after ") + c.what);
    ExpectOk(::unlink("f"), "unlink(f)");
  }
  // A directory keeps its set-group-ID bit (new entries inherit the group).
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  ExpectOk(::chmod("d", 02755), "chmod 2755 on a directory");
  ExpectOk(::chown("d", static_cast<uid_t>(-1), static_cast<gid_t>(-1)), "chown(d, -1, -1)");
  ExpectMode(StatOk("d").st_mode, 02755, "directory mode after chown(-1, -1)");
}

void StatMissing(const Scratch&) {
  struct stat st {};
  ExpectErrno(::stat("missing", &st), ENOENT, "stat of a missing file");
  ExpectErrno(::lstat("missing", &st), ENOENT, "lstat of a missing file");
  ExpectErrno(::fstatat(AT_FDCWD, "missing", &st, AT_SYMLINK_NOFOLLOW), ENOENT,
              "fstatat of a missing file");
}

void FstatMatchesStat(const Scratch&) {
  WriteFile("f", "12345");
  UniqueFd fd = OpenOk("f", O_RDONLY);
  const struct stat by_fd = FstatOk(fd.get());
  const struct stat by_path = StatOk("f");
  ExpectEq(by_fd.st_ino, by_path.st_ino, "st_ino by fd vs by path");
  ExpectEq(by_fd.st_dev, by_path.st_dev, "st_dev by fd vs by path");
  ExpectEq(by_fd.st_mode, by_path.st_mode, "st_mode by fd vs by path");
  ExpectEq(by_fd.st_size, by_path.st_size, "st_size by fd vs by path");
  ExpectEq(by_fd.st_uid, by_path.st_uid, "st_uid by fd vs by path");
  ExpectEq(by_fd.st_uid, ::getuid(), "st_uid of a file this process created");
}

void Access(const Scratch&) {
  // Only answers that are the same for root and for the owner.
  WriteFile("f", "x");
  ExpectOk(::chmod("f", 0644), "chmod(0644)");
  ExpectErrno(::access("missing", F_OK), ENOENT, "access(F_OK) of a missing file");
  ExpectOk(::access("f", F_OK), "access(F_OK)");
  ExpectOk(::access("f", R_OK), "access(R_OK) on 0644");
  ExpectOk(::access("f", R_OK | W_OK), "access(R_OK|W_OK) on 0644");
  ExpectErrno(::access("f", X_OK), EACCES, "access(X_OK) on 0644");
  ExpectOk(::chmod("f", 0755), "chmod(0755)");
  ExpectOk(::access("f", X_OK), "access(X_OK) on 0755");
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  ExpectOk(::access("d", R_OK | W_OK | X_OK), "access(R_OK|W_OK|X_OK) on a 0755 directory");
}

// ---- xattrs -------------------------------------------------------------------

// Binary on purpose: a NUL and a non-UTF-8 byte.
const std::string kValue("v\0al\xffue", 7);

// Sets user.test, skipping the check where the filesystem has no user xattrs.
void SetTestXattrOrSkip(const char* path) {
  const int rc = ::setxattr(path, "user.test", kValue.data(), kValue.size(), 0);
  if (rc < 0 && errno == EOPNOTSUPP) Skip("user xattrs not supported (EOPNOTSUPP)");
  ExpectOk(rc, "setxattr(user.test)");
}

std::vector<std::string> XattrNames(const char* path) {
  const long size = ExpectOk(::listxattr(path, nullptr, 0), "listxattr size query");
  std::string buffer(static_cast<size_t>(size), '\0');
  const long got = ExpectOk(::listxattr(path, buffer.data(), buffer.size()), "listxattr");
  ExpectEq(got, size, "listxattr length vs its size query");
  std::vector<std::string> names;
  for (size_t start = 0; start < buffer.size();) {
    const size_t end = buffer.find('\0', start);
    if (end == std::string::npos) Fail("expected listxattr names to end in NUL, got no NUL");
    names.push_back(buffer.substr(start, end - start));
    start = end + 1;
  }
  return names;
}

bool Contains(const std::vector<std::string>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

void XattrSetGet(const Scratch&) {
  WriteFile("f", "x");
  SetTestXattrOrSkip("f");
  char buffer[256];
  const long n = ExpectOk(::getxattr("f", "user.test", buffer, sizeof buffer), "getxattr");
  ExpectBytes(std::string_view(buffer, static_cast<size_t>(n)), kValue, "user.test value");
  ExpectBytes(ReadFile("f"), "x", "file content after setxattr");
}

void XattrSizeQuery(const Scratch&) {
  WriteFile("f", "x");
  SetTestXattrOrSkip("f");
  ExpectEq(ExpectOk(::getxattr("f", "user.test", nullptr, 0), "getxattr size query"), kValue.size(),
           "getxattr(size 0)");
}

void XattrList(const Scratch&) {
  WriteFile("f", "x");
  SetTestXattrOrSkip("f");
  ExpectOk(::setxattr("f", "user.second", "2", 1, 0), "setxattr(user.second)");
  const std::vector<std::string> names = XattrNames("f");
  ExpectTrue(Contains(names, "user.test"), "listxattr to hold user.test",
             std::to_string(names.size()) + " names without it");
  ExpectTrue(Contains(names, "user.second"), "listxattr to hold user.second",
             std::to_string(names.size()) + " names without it");
}

void XattrCreateExisting(const Scratch&) {
  WriteFile("f", "x");
  SetTestXattrOrSkip("f");
  ExpectErrno(::setxattr("f", "user.test", "new", 3, XATTR_CREATE), EEXIST,
              "setxattr(XATTR_CREATE) of an existing name");
  char buffer[256];
  const long n = ExpectOk(::getxattr("f", "user.test", buffer, sizeof buffer), "getxattr");
  ExpectBytes(std::string_view(buffer, static_cast<size_t>(n)), kValue,
              "value after the refused XATTR_CREATE");
  ExpectOk(::setxattr("f", "user.fresh", "new", 3, XATTR_CREATE),
           "setxattr(XATTR_CREATE) of a new name");
}

void XattrReplaceMissing(const Scratch&) {
  WriteFile("f", "x");
  SetTestXattrOrSkip("f");
  ExpectErrno(::setxattr("f", "user.missing", "v", 1, XATTR_REPLACE), ENODATA,
              "setxattr(XATTR_REPLACE) of a missing name");
  ExpectOk(::setxattr("f", "user.test", "replaced", 8, XATTR_REPLACE),
           "setxattr(XATTR_REPLACE) of an existing name");
  char buffer[256];
  const long n = ExpectOk(::getxattr("f", "user.test", buffer, sizeof buffer), "getxattr");
  ExpectBytes(std::string_view(buffer, static_cast<size_t>(n)), "replaced",
              "value after XATTR_REPLACE");
}

void XattrRemove(const Scratch&) {
  WriteFile("f", "x");
  SetTestXattrOrSkip("f");
  ExpectOk(::removexattr("f", "user.test"), "removexattr(user.test)");
  char buffer[256];
  ExpectErrno(::getxattr("f", "user.test", buffer, sizeof buffer), ENODATA,
              "getxattr after removexattr");
  ExpectTrue(!Contains(XattrNames("f"), "user.test"), "listxattr without user.test",
             "user.test still listed");
  ExpectErrno(::removexattr("f", "user.test"), ENODATA, "removexattr of a missing name");
  ExpectErrno(::getxattr("missing", "user.test", buffer, sizeof buffer), ENOENT,
              "getxattr of a missing file");
}

void XattrErange(const Scratch&) {
  WriteFile("f", "x");
  SetTestXattrOrSkip("f");
  char buffer[2];
  ExpectErrno(::getxattr("f", "user.test", buffer, sizeof buffer), ERANGE,
              "getxattr into a 2-byte buffer");
  ExpectErrno(::listxattr("f", buffer, 1), ERANGE, "listxattr into a 1-byte buffer");
}

void XattrEmptyValue(const Scratch&) {
  WriteFile("f", "x");
  SetTestXattrOrSkip("f");
  ExpectOk(::setxattr("f", "user.empty", "", 0, 0), "setxattr of an empty value");
  ExpectEq(ExpectOk(::getxattr("f", "user.empty", nullptr, 0), "getxattr size query"), 0,
           "size of the empty value");
  char buffer[16];
  ExpectEq(ExpectOk(::getxattr("f", "user.empty", buffer, sizeof buffer), "getxattr"), 0,
           "length of the empty value");
}

void XattrFdAndDir(const Scratch&) {
  WriteFile("f", "x");
  SetTestXattrOrSkip("f");
  UniqueFd fd = OpenOk("f", O_RDONLY);
  ExpectOk(::fsetxattr(fd.get(), "user.fd", "by fd", 5, 0), "fsetxattr");
  char buffer[256];
  const long n = ExpectOk(::getxattr("f", "user.fd", buffer, sizeof buffer), "getxattr");
  ExpectBytes(std::string_view(buffer, static_cast<size_t>(n)), "by fd", "value set by fd");
  const long m = ExpectOk(::fgetxattr(fd.get(), "user.test", buffer, sizeof buffer), "fgetxattr");
  ExpectBytes(std::string_view(buffer, static_cast<size_t>(m)), kValue, "value read by fd");
  ExpectOk(::fremovexattr(fd.get(), "user.fd"), "fremovexattr");
  ExpectErrno(::getxattr("f", "user.fd", buffer, sizeof buffer), ENODATA,
              "getxattr after fremovexattr");
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  ExpectOk(::setxattr("d", "user.dir", "on dir", 6, 0), "setxattr on a directory");
  const long k = ExpectOk(::getxattr("d", "user.dir", buffer, sizeof buffer), "getxattr(d)");
  ExpectBytes(std::string_view(buffer, static_cast<size_t>(k)), "on dir", "directory xattr");
}

// ---- statfs -------------------------------------------------------------------

void CheckStatvfs(const struct statvfs& st, std::string_view via) {
  const std::string suffix = " (" + std::string(via) + ")";
  ExpectTrue(st.f_bsize > 0, "f_bsize > 0" + suffix, std::to_string(st.f_bsize));
  ExpectTrue(st.f_frsize > 0, "f_frsize > 0" + suffix, std::to_string(st.f_frsize));
  ExpectTrue(st.f_blocks >= st.f_bfree, "f_blocks >= f_bfree" + suffix,
             std::to_string(st.f_blocks) + " < " + std::to_string(st.f_bfree));
  ExpectTrue(st.f_namemax >= 255, "f_namemax >= 255" + suffix, std::to_string(st.f_namemax));
}

void Statvfs(const Scratch&) {
  struct statvfs by_path {};
  ExpectOk(::statvfs(".", &by_path), "statvfs(.)");
  CheckStatvfs(by_path, "statvfs");
  WriteFile("f", "x");
  UniqueFd fd = OpenOk("f", O_RDONLY);
  struct statvfs by_fd {};
  ExpectOk(::fstatvfs(fd.get(), &by_fd), "fstatvfs");
  CheckStatvfs(by_fd, "fstatvfs");
  struct statfs linux_st {};
  ExpectOk(::statfs(".", &linux_st), "statfs(.)");
  ExpectTrue(linux_st.f_namelen >= 255, "statfs f_namelen >= 255",
             std::to_string(linux_st.f_namelen));
}

}  // namespace

std::vector<Check> MetaChecks() {
  return {
      {"meta.chmod", Chmod},
      {"meta.utimensat_explicit_ns", UtimensatExplicit},
      {"meta.utimensat_symlink_nofollow", UtimensatSymlinkNofollow},
      {"meta.utime_now", UtimeNow},
      {"meta.utime_omit", UtimeOmit},
      {"meta.truncate_changes_mtime", TruncateChangesMtime},
      {"meta.write_changes_mtime_size", WriteChangesMtimeAndSize},
      {"meta.file_types", FileTypes},
      {"meta.chown_self", ChownSelf},
      {"meta.chown_clears_setid", ChownClearsSetId},
      {"meta.stat_missing_enoent", StatMissing},
      {"meta.fstat_matches_stat", FstatMatchesStat},
      {"meta.access", Access},
      {"xattr.set_get", XattrSetGet},
      {"xattr.size_query", XattrSizeQuery},
      {"xattr.list", XattrList},
      {"xattr.create_existing_eexist", XattrCreateExisting},
      {"xattr.replace_missing_enodata", XattrReplaceMissing},
      {"xattr.remove_enodata", XattrRemove},
      {"xattr.small_buffer_erange", XattrErange},
      {"xattr.empty_value", XattrEmptyValue},
      {"xattr.fd_and_dir", XattrFdAndDir},
      {"statfs.statvfs", Statvfs},
  };
}

}  // namespace ws
