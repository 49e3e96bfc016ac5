// ws_conformance checks on regular files: the open flags matrix and reads and
// writes at offsets, holes, truncation and syncing.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "tests/workspace/conformance.h"

namespace ws {
namespace {

constexpr off_t kMiB = off_t{1024} * 1024;

// ---- open flags ---------------------------------------------------------------

void CreatNew(const Scratch&) {
  UniqueFd fd = OpenOk("f", O_WRONLY | O_CREAT, 0644);
  const struct stat st = FstatOk(fd.get());
  ExpectType(st.st_mode, S_IFREG, "the new file");
  ExpectEq(st.st_size, 0, "size of the new file");
  ExpectEq(st.st_nlink, 1, "nlink of the new file");
  ExpectEq(StatOk("f").st_ino, st.st_ino, "st_ino by path vs by fd");
}

void CreatExisting(const Scratch&) {
  WriteFile("f", "abc");
  {
    // O_CREAT on an existing file neither truncates nor applies the mode.
    UniqueFd fd = OpenOk("f", O_RDWR | O_CREAT, 0600);
  }
  ExpectBytes(ReadFile("f"), "abc", "content after open(O_CREAT) of an existing file");
  ExpectMode(StatOk("f").st_mode, 0644, "mode after open(O_CREAT, 0600) of an existing file");
}

void ExclExisting(const Scratch&) {
  WriteFile("f", "abc");
  ExpectOpenErrno("f", O_WRONLY | O_CREAT | O_EXCL, EEXIST,
                  "open(O_CREAT|O_EXCL) of an existing file");
  ExpectBytes(ReadFile("f"), "abc", "content after the failed O_EXCL open");
}

void ExclNew(const Scratch&) {
  UniqueFd fd = OpenOk("f", O_WRONLY | O_CREAT | O_EXCL, 0644);
  StatOk("f");
}

void ExclDanglingSymlink(const Scratch&) {
  // O_EXCL never follows a symlink, even a dangling one.
  ExpectOk(::symlink("target", "link"), "symlink(target, link)");
  ExpectOpenErrno("link", O_WRONLY | O_CREAT | O_EXCL, EEXIST,
                  "open(O_CREAT|O_EXCL) of a dangling symlink");
  struct stat st {};
  ExpectErrno(::lstat("target", &st), ENOENT, "lstat of the symlink target");
}

void Trunc(const Scratch&) {
  WriteFile("f", std::string(100, 'x'));
  UniqueFd fd = OpenOk("f", O_WRONLY | O_TRUNC);
  ExpectEq(FstatOk(fd.get()).st_size, 0, "size after open(O_TRUNC) (fstat)");
  fd.Reset();
  ExpectEq(StatOk("f").st_size, 0, "size after open(O_TRUNC) (stat)");
  ExpectBytes(ReadFile("f"), "", "content after open(O_TRUNC)");
}

void Append(const Scratch&) {
  WriteFile("f", "hello");
  UniqueFd fd = OpenOk("f", O_WRONLY | O_APPEND);
  ExpectEq(ExpectOk(::lseek(fd.get(), 0, SEEK_SET), "lseek(0, SEEK_SET)"), 0, "lseek result");
  WriteAll(fd.get(), "world");
  ExpectEq(ExpectOk(::lseek(fd.get(), 0, SEEK_CUR), "lseek(0, SEEK_CUR)"), 10,
           "offset after an O_APPEND write");
  ExpectOk(::lseek(fd.get(), 0, SEEK_SET), "lseek(0, SEEK_SET)");
  WriteAll(fd.get(), "!");
  fd.Reset();
  ExpectBytes(ReadFile("f"), "helloworld!", "content after O_APPEND writes");
}

void AppendTwoFds(const Scratch&) {
  WriteFile("f", "0");
  UniqueFd a = OpenOk("f", O_WRONLY | O_APPEND);
  UniqueFd b = OpenOk("f", O_WRONLY | O_APPEND);
  WriteAll(a.get(), "A");
  WriteAll(b.get(), "B");
  WriteAll(a.get(), "C");
  ExpectEq(FstatOk(b.get()).st_size, 4, "size after interleaved O_APPEND writes");
  a.Reset();
  b.Reset();
  ExpectBytes(ReadFile("f"), "0ABC", "content after O_APPEND writes through two fds");
}

void RdonlyWrite(const Scratch&) {
  WriteFile("f", "abc");
  UniqueFd fd = OpenOk("f", O_RDONLY);
  ExpectErrno(::write(fd.get(), "x", 1), EBADF, "write on an O_RDONLY fd");
  ExpectBytes(ReadFile("f"), "abc", "content after the refused write");
}

void WronlyRead(const Scratch&) {
  WriteFile("f", "abc");
  UniqueFd fd = OpenOk("f", O_WRONLY);
  char c;
  ExpectErrno(::read(fd.get(), &c, 1), EBADF, "read on an O_WRONLY fd");
}

void DirectoryOnFile(const Scratch&) {
  WriteFile("f", "abc");
  ExpectOpenErrno("f", O_RDONLY | O_DIRECTORY, ENOTDIR, "open(O_DIRECTORY) of a file");
}

void Missing(const Scratch&) {
  ExpectOpenErrno("missing", O_RDONLY, ENOENT, "open(O_RDONLY) of a missing file");
  ExpectOpenErrno("missing", O_WRONLY, ENOENT, "open(O_WRONLY) of a missing file");
  struct stat st {};
  ExpectErrno(::lstat("missing", &st), ENOENT, "lstat after the failed opens");
}

void DirForWriting(const Scratch&) {
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  ExpectOpenErrno("d", O_WRONLY, EISDIR, "open(O_WRONLY) of a directory");
  ExpectOpenErrno("d", O_RDWR, EISDIR, "open(O_RDWR) of a directory");
  ExpectOpenErrno("d", O_WRONLY | O_CREAT, EISDIR, "open(O_WRONLY|O_CREAT) of a directory");
  UniqueFd fd = OpenOk("d", O_RDONLY);
  ExpectType(FstatOk(fd.get()).st_mode, S_IFDIR, "d opened O_RDONLY");
}

void NofollowSymlink(const Scratch&) {
  WriteFile("target", "abc");
  ExpectOk(::symlink("target", "link"), "symlink(target, link)");
  ExpectOpenErrno("link", O_RDONLY | O_NOFOLLOW, ELOOP, "open(O_NOFOLLOW) of a symlink");
  UniqueFd fd = OpenOk("target", O_RDONLY | O_NOFOLLOW);
}

void CreatModeUmask(const Scratch&) {
  struct Case {
    const char* name;
    mode_t umask;
    mode_t requested;
    mode_t want;
  };
  const Case cases[] = {
      {"a", 022, 0666, 0644}, {"b", 022, 0777, 0755}, {"c", 022, 0600, 0600},
      {"d", 022, 0, 0},       {"e", 077, 0666, 0600}, {"f", 0, 0777, 0777},
  };
  for (const Case& c : cases) {
    ::umask(c.umask);
    UniqueFd fd(::open(c.name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, c.requested));
    const int err = errno;
    ::umask(022);
    const std::string what =
        "open(O_CREAT, " + Octal(c.requested) + ") under umask " + Octal(c.umask);
    if (!fd) Fail("expected " + what + " to succeed, got " + ErrnoName(err));
    ExpectMode(FstatOk(fd.get()).st_mode, c.want, "mode after " + what);
    ExpectMode(StatOk(c.name).st_mode, c.want, "mode by path after " + what);
  }
  ExpectOk(::mkdir("dir", 0777), "mkdir(dir, 0777)");
  ExpectMode(StatOk("dir").st_mode, 0755, "mode after mkdir(0777) under umask 022");
}

void RdwrSameFd(const Scratch&) {
  UniqueFd fd = OpenOk("f", O_RDWR | O_CREAT);
  WriteAll(fd.get(), "data1234");
  ExpectBytes(PreadExactly(fd.get(), 8, 0), "data1234", "pread right after write");
  ExpectOk(::pwrite(fd.get(), "XX", 2, 2), "pwrite(XX, 2)");
  ExpectOk(::lseek(fd.get(), 0, SEEK_SET), "lseek(0)");
  ExpectBytes(ReadToEnd(fd.get()), "daXX1234", "read after pwrite over the middle");
}

void RdwrSecondFd(const Scratch&) {
  UniqueFd one = OpenOk("f", O_RDWR | O_CREAT);
  UniqueFd two = OpenOk("f", O_RDWR);
  WriteAll(one.get(), "hello");
  ExpectBytes(PreadExactly(two.get(), 5, 0), "hello", "read through a second fd");
  ExpectEq(FstatOk(two.get()).st_size, 5, "size seen through the second fd");
  ExpectEq(ExpectOk(::pwrite(two.get(), " world", 6, 5), "pwrite through the second fd"), 6,
           "pwrite result");
  ExpectBytes(PreadExactly(one.get(), 11, 0), "hello world", "read back through the first fd");
  ExpectEq(FstatOk(one.get()).st_size, 11, "size seen through the first fd");
}

// ---- reads and writes ---------------------------------------------------------

void PwritePread(const Scratch&) {
  const off_t offsets[] = {0, 4095, 4096, 65537, kMiB + 3};
  UniqueFd fd = OpenOk("f", O_RDWR | O_CREAT);
  std::string want;
  for (size_t i = 0; i < std::size(offsets); ++i) {
    const std::string chunk = PatternBytes(16, static_cast<unsigned>(i));
    ExpectEq(ExpectOk(::pwrite(fd.get(), chunk.data(), chunk.size(), offsets[i]), "pwrite"), 16,
             "pwrite result");
    if (want.size() < static_cast<size_t>(offsets[i]) + 16) want.resize(offsets[i] + 16, '\0');
    want.replace(offsets[i], 16, chunk);
  }
  for (size_t i = 0; i < std::size(offsets); ++i) {
    ExpectBytes(PreadExactly(fd.get(), 16, offsets[i]), want.substr(offsets[i], 16),
                "pread at offset " + std::to_string(offsets[i]));
  }
  ExpectEq(FstatOk(fd.get()).st_size, want.size(), "size after pwrites");
  fd.Reset();
  ExpectBytes(ReadFile("f"), want, "whole file after pwrites");
}

void Sparse(const Scratch&) {
  const off_t end = 10 * kMiB;
  {
    UniqueFd fd = OpenOk("f", O_WRONLY | O_CREAT);
    ExpectEq(ExpectOk(::pwrite(fd.get(), "X", 1, end), "pwrite at 10 MiB"), 1, "pwrite result");
    ExpectEq(FstatOk(fd.get()).st_size, end + 1, "size after a write at 10 MiB (fstat)");
  }
  ExpectEq(StatOk("f").st_size, end + 1, "size after a write at 10 MiB (stat)");
  UniqueFd fd = OpenOk("f", O_RDONLY);
  ExpectBytes(PreadExactly(fd.get(), 4096, 0), std::string(4096, '\0'), "hole at offset 0");
  ExpectBytes(PreadExactly(fd.get(), 65536, 5 * kMiB), std::string(65536, '\0'), "hole at 5 MiB");
  ExpectBytes(PreadExactly(fd.get(), 4097, end - 4096), std::string(4096, '\0') + "X",
              "end of the hole and the written byte");
}

void Large3MiB(const Scratch&) {
  const std::string data = PatternBytes(3 * kMiB, 7);
  {
    UniqueFd fd = OpenOk("f", O_WRONLY | O_CREAT);
    ExpectEq(ExpectOk(::write(fd.get(), data.data(), data.size()), "write of 3 MiB"), data.size(),
             "bytes written by one write() of 3 MiB");
    ExpectOk(::close(fd.Release()), "close");
  }
  ExpectEq(StatOk("f").st_size, data.size(), "size after a 3 MiB write");
  ExpectBytes(ReadFile("f"), data, "3 MiB read back");
}

void ShortReadAtEof(const Scratch&) {
  WriteFile("f", "0123456789");
  UniqueFd fd = OpenOk("f", O_RDONLY);
  char buffer[100];
  ExpectEq(ExpectOk(::pread(fd.get(), buffer, sizeof buffer, 5), "pread(100, 5)"), 5,
           "bytes from pread(100) at offset 5 of a 10-byte file");
  ExpectBytes(std::string_view(buffer, 5), "56789", "bytes from the short pread");
  ExpectEq(ExpectOk(::pread(fd.get(), buffer, sizeof buffer, 10), "pread at EOF"), 0,
           "bytes from pread at EOF");
  ExpectEq(ExpectOk(::pread(fd.get(), buffer, sizeof buffer, 1000), "pread past EOF"), 0,
           "bytes from pread past EOF");
  ExpectEq(ExpectOk(::read(fd.get(), buffer, sizeof buffer), "read(100)"), 10,
           "bytes from read(100) of a 10-byte file");
  ExpectEq(ExpectOk(::read(fd.get(), buffer, sizeof buffer), "read at EOF"), 0,
           "bytes from read at EOF");
}

void FtruncateGrow(const Scratch&) {
  WriteFile("f", "abc");
  UniqueFd fd = OpenOk("f", O_RDWR);
  ExpectOk(::ftruncate(fd.get(), 8192), "ftruncate(8192)");
  ExpectEq(FstatOk(fd.get()).st_size, 8192, "size after ftruncate(8192)");
  ExpectBytes(PreadExactly(fd.get(), 8192, 0), "abc" + std::string(8189, '\0'),
              "content after growing");
}

void FtruncateShrink(const Scratch&) {
  WriteFile("f", std::string(8192, 'x'));
  UniqueFd fd = OpenOk("f", O_RDWR);
  ExpectOk(::ftruncate(fd.get(), 100), "ftruncate(100)");
  ExpectEq(FstatOk(fd.get()).st_size, 100, "size after ftruncate(100)");
  ExpectBytes(ReadFile("f"), std::string(100, 'x'), "content after shrinking");
  // Growing again must not bring the cut bytes back.
  ExpectOk(::ftruncate(fd.get(), 200), "ftruncate(200)");
  ExpectBytes(ReadFile("f"), std::string(100, 'x') + std::string(100, '\0'),
              "content after shrinking then growing");
}

void TruncatePath(const Scratch&) {
  WriteFile("f", PatternBytes(1000, 3));
  ExpectOk(::truncate("f", 10), "truncate(f, 10)");
  ExpectEq(StatOk("f").st_size, 10, "size after truncate(10)");
  ExpectBytes(ReadFile("f"), PatternBytes(1000, 3).substr(0, 10), "content after truncate(10)");
  ExpectOk(::truncate("f", 20), "truncate(f, 20)");
  ExpectBytes(ReadFile("f"), PatternBytes(1000, 3).substr(0, 10) + std::string(10, '\0'),
              "content after truncate(20)");
  ExpectErrno(::truncate("missing", 0), ENOENT, "truncate of a missing file");
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  ExpectErrno(::truncate("d", 0), EISDIR, "truncate of a directory");
}

void Fsync(const Scratch&) {
  UniqueFd fd = OpenOk("f", O_WRONLY | O_CREAT);
  WriteAll(fd.get(), PatternBytes(100000, 1));
  ExpectOk(::fsync(fd.get()), "fsync with dirty data");
  WriteAll(fd.get(), "more");
  ExpectOk(::fdatasync(fd.get()), "fdatasync with dirty data");
  UniqueFd reader = OpenOk("f", O_RDONLY);
  ExpectOk(::fsync(reader.get()), "fsync of an O_RDONLY fd");
  // Editors and databases fsync the directory after a rename.
  UniqueFd dir = OpenOk(".", O_RDONLY | O_DIRECTORY);
  ExpectOk(::fsync(dir.get()), "fsync of a directory fd");
}

void LseekEnd(const Scratch&) {
  const std::string data = PatternBytes(1234, 5);
  WriteFile("f", data);
  UniqueFd fd = OpenOk("f", O_RDWR);
  ExpectEq(ExpectOk(::lseek(fd.get(), 0, SEEK_END), "lseek(0, SEEK_END)"), 1234,
           "lseek(0, SEEK_END)");
  ExpectEq(ExpectOk(::lseek(fd.get(), -4, SEEK_END), "lseek(-4, SEEK_END)"), 1230,
           "lseek(-4, SEEK_END)");
  char tail[4];
  ExpectEq(ExpectOk(::read(fd.get(), tail, 4), "read(4)"), 4, "bytes read");
  ExpectBytes(std::string_view(tail, 4), data.substr(1230), "last 4 bytes");
  ExpectEq(ExpectOk(::lseek(fd.get(), 0, SEEK_CUR), "lseek(0, SEEK_CUR)"), 1234,
           "offset after reading to the end");
  // Seeking past the end is allowed; writing there leaves a hole.
  ExpectEq(ExpectOk(::lseek(fd.get(), 100, SEEK_END), "lseek(100, SEEK_END)"), 1334,
           "lseek(100, SEEK_END)");
  ExpectEq(FstatOk(fd.get()).st_size, 1234, "size after seeking past the end");
  WriteAll(fd.get(), "Z");
  ExpectEq(FstatOk(fd.get()).st_size, 1335, "size after writing past the end");
  ExpectBytes(PreadExactly(fd.get(), 101, 1234), std::string(100, '\0') + "Z",
              "hole and byte written past the end");
}

}  // namespace

std::vector<Check> FileChecks() {
  return {
      {"open.creat_new", CreatNew},
      {"open.creat_existing", CreatExisting},
      {"open.excl_existing", ExclExisting},
      {"open.excl_new", ExclNew},
      {"open.excl_dangling_symlink", ExclDanglingSymlink},
      {"open.trunc", Trunc},
      {"open.append_after_lseek", Append},
      {"open.append_two_fds", AppendTwoFds},
      {"open.rdonly_write_ebadf", RdonlyWrite},
      {"open.wronly_read_ebadf", WronlyRead},
      {"open.directory_on_file_enotdir", DirectoryOnFile},
      {"open.missing_enoent", Missing},
      {"open.dir_for_writing_eisdir", DirForWriting},
      {"open.nofollow_symlink_eloop", NofollowSymlink},
      {"open.creat_mode_umask", CreatModeUmask},
      {"open.rdwr_same_fd", RdwrSameFd},
      {"open.rdwr_second_fd", RdwrSecondFd},
      {"io.pwrite_pread_offsets", PwritePread},
      {"io.sparse_10mib", Sparse},
      {"io.write_3mib_one_call", Large3MiB},
      {"io.short_read_at_eof", ShortReadAtEof},
      {"io.ftruncate_grow", FtruncateGrow},
      {"io.ftruncate_shrink", FtruncateShrink},
      {"io.truncate_path", TruncatePath},
      {"io.fsync_fdatasync", Fsync},
      {"io.lseek_end", LseekEnd},
  };
}

}  // namespace ws
