// ws_conformance checks on the namespace: directories and readdir, rename in
// all its forms (renameat2 flags included), hard links and symlinks.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>  // RENAME_NOREPLACE, RENAME_EXCHANGE (_GNU_SOURCE)
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tests/workspace/conformance.h"

namespace ws {
namespace {

std::vector<std::string> DotsAnd(std::vector<std::string> names) {
  names.emplace_back(".");
  names.emplace_back("..");
  return names;
}

void ExpectMissing(const char* path, std::string_view what) {
  struct stat st {};
  ExpectErrno(::lstat(path, &st), ENOENT, what);
}

// ---- directories --------------------------------------------------------------

void MkdirRmdir(const Scratch&) {
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  const struct stat st = StatOk("d");
  ExpectType(st.st_mode, S_IFDIR, "d");
  ExpectMode(st.st_mode, 0755, "mode of d");
  ExpectNames(ListDir("d"), DotsAnd({}), "entries of a new directory");
  ExpectOk(::rmdir("d"), "rmdir(d)");
  ExpectMissing("d", "lstat after rmdir");
}

void RmdirNonEmpty(const Scratch&) {
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  WriteFile("d/f", "x");
  ExpectErrno(::rmdir("d"), ENOTEMPTY, "rmdir of a directory holding a file");
  ExpectOk(::unlink("d/f"), "unlink(d/f)");
  ExpectOk(::mkdir("d/sub", 0755), "mkdir(d/sub)");
  ExpectErrno(::rmdir("d"), ENOTEMPTY, "rmdir of a directory holding a directory");
  ExpectType(StatOk("d/sub").st_mode, S_IFDIR, "d/sub after the refused rmdir");
}

void MkdirExisting(const Scratch&) {
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  ExpectErrno(::mkdir("d", 0755), EEXIST, "mkdir of an existing directory");
  WriteFile("f", "x");
  ExpectErrno(::mkdir("f", 0755), EEXIST, "mkdir over an existing file");
  ExpectOk(::symlink("nowhere", "link"), "symlink(nowhere, link)");
  ExpectErrno(::mkdir("link", 0755), EEXIST, "mkdir over a dangling symlink");
}

void UnlinkDir(const Scratch&) {
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  ExpectErrno(::unlink("d"), EISDIR, "unlink of a directory");
  ExpectType(StatOk("d").st_mode, S_IFDIR, "d after the refused unlink");
}

void RmdirFile(const Scratch&) {
  WriteFile("f", "x");
  ExpectErrno(::rmdir("f"), ENOTDIR, "rmdir of a file");
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  ExpectOk(::symlink("d", "link"), "symlink(d, link)");
  ExpectErrno(::rmdir("link"), ENOTDIR, "rmdir of a symlink to a directory");
  ExpectErrno(::rmdir("d/."), EINVAL, "rmdir(d/.)");
}

std::string EntryName(int i) {
  // A mix of the names real trees hold: plain, spaces, UTF-8, dot files,
  // leading dashes and long names.
  std::string name;
  if (i % 7 == 0) {
    name = "with space " + std::to_string(i);
  } else if (i % 11 == 0) {
    name =
        "\xc3\xbcnic\xc3\xb8"
        "de-" +
        std::to_string(i);
  } else if (i % 13 == 0) {
    name = ".hidden-" + std::to_string(i);
  } else if (i % 17 == 0) {
    name = "-dash-" + std::to_string(i);
  } else {
    name = "file" + std::to_string(i) + ".txt";
  }
  if (i % 100 == 1) name += std::string(200, 'L');
  return name;
}

void ThousandEntries(const Scratch&) {
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  std::vector<std::string> names;
  for (int i = 0; i < 1000; ++i) {
    names.push_back(EntryName(i));
    const std::string path = "d/" + names.back();
    UniqueFd fd = OpenOk(path.c_str(), O_WRONLY | O_CREAT | O_EXCL);
  }
  ExpectNames(ListDir("d"), DotsAnd(names), "readdir of a 1000-entry directory");
  for (const std::string& name : names) {
    const std::string path = "d/" + name;
    const std::string what = "unlink(" + Quote(path) + ")";
    ExpectOk(::unlink(path.c_str()), what);
  }
  ExpectNames(ListDir("d"), DotsAnd({}), "readdir after unlinking all 1000 entries");
  ExpectOk(::rmdir("d"), "rmdir of the emptied directory");
}

void ReaddirAfterChange(const Scratch&) {
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  for (const char* name : {"d/a", "d/b", "d/c"}) WriteFile(name, name);
  ExpectNames(ListDir("d"), DotsAnd({"a", "b", "c"}), "readdir before changes");
  ExpectOk(::rename("d/a", "d/z"), "rename(d/a, d/z)");
  ExpectOk(::unlink("d/b"), "unlink(d/b)");
  WriteFile("d/n", "n");
  ExpectNames(ListDir("d"), DotsAnd({"c", "n", "z"}), "readdir after rename, unlink, create");
  ExpectBytes(ReadFile("d/z"), "d/a", "content under the new name");
}

void RewinddirSeesChange(const Scratch&) {
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  WriteFile("d/a", "a");
  DIR* dir = ::opendir("d");
  if (dir == nullptr) ExpectOk(-1, "opendir(d)");
  auto read_all = [dir] {
    std::vector<std::string> names;
    while (const dirent* entry = ::readdir(dir)) names.emplace_back(entry->d_name);
    return names;
  };
  const std::vector<std::string> before = read_all();
  WriteFile("d/b", "b");
  ExpectOk(::unlink("d/a"), "unlink(d/a)");
  // POSIX: after rewinddir, readdir reflects the directory's current state.
  ::rewinddir(dir);
  const std::vector<std::string> after = read_all();
  ::closedir(dir);
  ExpectNames(before, DotsAnd({"a"}), "readdir before changes");
  ExpectNames(after, DotsAnd({"b"}), "readdir after rewinddir");
}

// POSIX: an entry neither added nor removed since opendir is returned
// exactly once, however the directory changes while it is read. Local
// filesystems keep this with cookies that survive changes; the workspace
// with the listing its offsets name.
void ReadOnAcrossChanges(const Scratch&) {
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  auto name = [](const char* prefix, int i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%s%03d", prefix, i);
    return std::string(buf);
  };
  for (int i = 0; i < 300; ++i) WriteFile(("d/" + name("f", i)).c_str(), "x");
  DIR* dir = ::opendir("d");
  if (dir == nullptr) ExpectOk(-1, "opendir(d)");
  std::map<std::string, int> seen;
  std::vector<std::string> first;
  while (first.size() < 100) {
    const dirent* entry = ::readdir(dir);
    if (entry == nullptr) break;
    ++seen[entry->d_name];
    if (entry->d_name[0] == 'f') first.emplace_back(entry->d_name);
  }
  // Half of what was read goes, and as many new names come.
  std::set<std::string> removed;
  for (size_t i = 0; i < first.size(); i += 2) {
    ExpectOk(::unlink(("d/" + first[i]).c_str()), "unlink of a name already read");
    removed.insert(first[i]);
  }
  for (int i = 0; i < 50; ++i) WriteFile(("d/" + name("n", i)).c_str(), "x");
  while (const dirent* entry = ::readdir(dir)) ++seen[entry->d_name];
  ::closedir(dir);
  for (int i = 0; i < 300; ++i) {
    const std::string f = name("f", i);
    if (removed.count(f) != 0) continue;
    ExpectEq(seen[f], 1, "times " + f + " (present throughout) was read");
  }
  for (const auto& [n, times] : seen) ExpectTrue(times == 1, "no entry read twice", n);
}

// telldir names a place that seekdir returns to, after which readdir gives
// the same entries again.
void SeekdirReturns(const Scratch&) {
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  for (int i = 0; i < 120; ++i) WriteFile(("d/e" + std::to_string(i)).c_str(), "x");
  DIR* dir = ::opendir("d");
  if (dir == nullptr) ExpectOk(-1, "opendir(d)");
  for (int i = 0; i < 40; ++i) {
    if (::readdir(dir) == nullptr) Fail("expected 40 entries before telldir");
  }
  const long here = ::telldir(dir);
  auto next10 = [dir] {
    std::vector<std::string> names;
    for (int i = 0; i < 10; ++i) {
      const dirent* entry = ::readdir(dir);
      if (entry == nullptr) break;
      names.emplace_back(entry->d_name);
    }
    return names;
  };
  const std::vector<std::string> once = next10();
  for (int i = 0; i < 30; ++i) ::readdir(dir);  // on, past a page boundary perhaps
  ::seekdir(dir, here);
  const std::vector<std::string> again = next10();
  ::closedir(dir);
  ExpectEq(once.size(), size_t{10}, "entries read after telldir");
  ExpectTrue(once == again, "the same 10 entries after seekdir to telldir's place",
             again.empty() ? "none" : again.front() + "...");
}

// d_type tells each kind, and lstat of every listed name agrees.
void DirentTypes(const Scratch&) {
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  WriteFile("d/file", "x");
  ExpectOk(::mkdir("d/sub", 0755), "mkdir(d/sub)");
  ExpectOk(::symlink("file", "d/link"), "symlink(file, d/link)");
  ExpectOk(::mkfifo("d/fifo", 0644), "mkfifo(d/fifo)");
  const std::map<std::string, std::pair<unsigned char, mode_t>> want = {
      {"file", {DT_REG, S_IFREG}},
      {"sub", {DT_DIR, S_IFDIR}},
      {"link", {DT_LNK, S_IFLNK}},
      {"fifo", {DT_FIFO, S_IFIFO}}};
  DIR* dir = ::opendir("d");
  if (dir == nullptr) ExpectOk(-1, "opendir(d)");
  std::map<std::string, unsigned char> types;
  while (const dirent* entry = ::readdir(dir)) types[entry->d_name] = entry->d_type;
  ::closedir(dir);
  for (const auto& [n, type] : want) {
    ExpectEq(static_cast<int>(types.count(n) ? types[n] : 255), static_cast<int>(type.first),
             "d_type of " + n);
    ExpectType(LstatOk(("d/" + n).c_str()).st_mode, type.second, "lstat of listed " + n);
  }
}

void Nested5Deep(const Scratch&) {
  const char* dirs[] = {"a", "a/b", "a/b/c", "a/b/c/d", "a/b/c/d/e"};
  for (const char* dir : dirs) {
    const std::string what = "mkdir(" + std::string(dir) + ")";
    ExpectOk(::mkdir(dir, 0755), what);
  }
  WriteFile("a/b/c/d/e/f", "deep");
  ExpectBytes(ReadFile("a/b/c/d/e/f"), "deep", "content 5 directories deep");
  ExpectBytes(ReadFile("a/b/../b/c/./d/e/f"), "deep", "content through . and ..");
  // Walk down with openat, as fts and find do.
  UniqueFd fd = OpenOk("a", O_RDONLY | O_DIRECTORY);
  for (const char* name : {"b", "c", "d", "e"}) {
    const int next = ::openat(fd.get(), name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    fd.Reset(static_cast<int>(ExpectOk(next, "openat of the next level")));
  }
  struct stat st {};
  ExpectOk(::fstatat(fd.get(), "f", &st, 0), "fstatat(e, f)");
  ExpectEq(st.st_size, 4, "size of the deep file");
  UniqueFd parent(::openat(fd.get(), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ExpectOk(parent.get(), "openat(e, ..)");
  ExpectEq(FstatOk(parent.get()).st_ino, StatOk("a/b/c/d").st_ino, "st_ino of e/..");
  fd.Reset();
  parent.Reset();
  ExpectOk(::unlink("a/b/c/d/e/f"), "unlink of the deep file");
  for (int i = 4; i >= 0; --i) {
    const std::string what = "rmdir(" + std::string(dirs[i]) + ")";
    ExpectOk(::rmdir(dirs[i]), what);
  }
  ExpectNames(ListDir("."), DotsAnd({}), "scratch directory after removing the tree");
}

// ---- rename -------------------------------------------------------------------

int Renameat2(const char* from, const char* to, unsigned flags) {
  return static_cast<int>(::syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, flags));
}

// Runs renameat2 and skips the check when the filesystem refuses the flag.
void Renameat2OrSkip(const char* from, const char* to, unsigned flags, std::string_view what,
                     int want_errno) {
  const int rc = Renameat2(from, to, flags);
  const int err = errno;
  if (rc < 0 && err == EINVAL) Skip("renameat2 flag not supported (EINVAL)");
  errno = err;
  if (want_errno == 0) {
    ExpectOk(rc, what);
  } else {
    ExpectErrno(rc, want_errno, what);
  }
}

void FileOverFile(const Scratch&) {
  WriteFile("a", "AAA");
  WriteFile("b", "BBBBB");
  const ino_t ino = StatOk("a").st_ino;
  ExpectOk(::rename("a", "b"), "rename(a, b)");
  ExpectBytes(ReadFile("b"), "AAA", "content of b after rename(a, b)");
  ExpectEq(StatOk("b").st_ino, ino, "st_ino of b after rename (a's inode)");
  ExpectMissing("a", "lstat(a) after rename(a, b)");
  ExpectNames(ListDir("."), DotsAnd({"b"}), "readdir after rename over a file");
}

void ReplacedFileStaysReadable(const Scratch&) {
  WriteFile("b", "old");
  UniqueFd fd = OpenOk("b", O_RDONLY);
  WriteFile("a", "new");
  ExpectOk(::rename("a", "b"), "rename(a, b)");
  ExpectBytes(PreadExactly(fd.get(), 3, 0), "old", "read through an fd on the replaced file");
  ExpectBytes(ReadFile("b"), "new", "content of b by path");
  ExpectNames(ListDir("."), DotsAnd({"b"}), "readdir while the replaced file is open");
}

void FileIntoOtherDir(const Scratch&) {
  ExpectOk(::mkdir("d1", 0755), "mkdir(d1)");
  ExpectOk(::mkdir("d2", 0755), "mkdir(d2)");
  WriteFile("d1/f", "moved");
  ExpectOk(::rename("d1/f", "d2/g"), "rename(d1/f, d2/g)");
  ExpectBytes(ReadFile("d2/g"), "moved", "content after moving");
  ExpectNames(ListDir("d1"), DotsAnd({}), "readdir of the source directory");
  ExpectNames(ListDir("d2"), DotsAnd({"g"}), "readdir of the target directory");
}

void DirRename(const Scratch&) {
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  ExpectOk(::mkdir("d/sub", 0755), "mkdir(d/sub)");
  WriteFile("d/f", "inside");
  WriteFile("d/sub/g", "deeper");
  ExpectOk(::rename("d", "e"), "rename(d, e)");
  ExpectMissing("d", "lstat(d) after rename(d, e)");
  ExpectBytes(ReadFile("e/f"), "inside", "e/f after the rename");
  ExpectBytes(ReadFile("e/sub/g"), "deeper", "e/sub/g after the rename");
  ExpectEq(StatOk("e/sub/..").st_ino, StatOk("e").st_ino, "st_ino of e/sub/..");
}

void DirOverEmptyDir(const Scratch&) {
  ExpectOk(::mkdir("a", 0755), "mkdir(a)");
  WriteFile("a/f", "x");
  ExpectOk(::mkdir("b", 0755), "mkdir(b)");
  ExpectOk(::rename("a", "b"), "rename of a directory over an empty directory");
  ExpectMissing("a", "lstat(a) after the rename");
  ExpectNames(ListDir("b"), DotsAnd({"f"}), "readdir of the replaced directory");
}

void DirOverNonEmptyDir(const Scratch&) {
  ExpectOk(::mkdir("a", 0755), "mkdir(a)");
  ExpectOk(::mkdir("b", 0755), "mkdir(b)");
  WriteFile("b/f", "x");
  ExpectErrno(::rename("a", "b"), ENOTEMPTY, "rename of a directory over a non-empty one");
  ExpectType(StatOk("a").st_mode, S_IFDIR, "a after the refused rename");
  ExpectBytes(ReadFile("b/f"), "x", "b/f after the refused rename");
}

void FileOverDir(const Scratch&) {
  WriteFile("f", "x");
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  ExpectErrno(::rename("f", "d"), EISDIR, "rename of a file over a directory");
  ExpectType(StatOk("d").st_mode, S_IFDIR, "d after the refused rename");
}

void DirOverFile(const Scratch&) {
  WriteFile("f", "x");
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  ExpectErrno(::rename("d", "f"), ENOTDIR, "rename of a directory over a file");
  ExpectBytes(ReadFile("f"), "x", "f after the refused rename");
}

void RenameToItself(const Scratch&) {
  WriteFile("a", "same");
  ExpectOk(::rename("a", "a"), "rename(a, a)");
  ExpectBytes(ReadFile("a"), "same", "content after rename(a, a)");
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  ExpectOk(::rename("d", "d"), "rename(d, d)");
  // Two names of one inode: POSIX says rename does nothing.
  ExpectOk(::link("a", "b"), "link(a, b)");
  ExpectOk(::rename("a", "b"), "rename(a, b) where both name one inode");
  ExpectEq(StatOk("a").st_nlink, 2, "nlink after renaming onto a hard link");
  ExpectNames(ListDir("."), DotsAnd({"a", "b", "d"}), "readdir after the no-op renames");
}

void DirIntoOwnSubdir(const Scratch&) {
  ExpectOk(::mkdir("a", 0755), "mkdir(a)");
  ExpectOk(::mkdir("a/b", 0755), "mkdir(a/b)");
  ExpectErrno(::rename("a", "a/b/c"), EINVAL, "rename of a directory into itself");
}

void NoreplaceExisting(const Scratch&) {
  WriteFile("a", "A");
  WriteFile("b", "B");
  Renameat2OrSkip("a", "b", RENAME_NOREPLACE, "renameat2(RENAME_NOREPLACE) onto an existing file",
                  EEXIST);
  ExpectBytes(ReadFile("a"), "A", "a after the refused rename");
  ExpectBytes(ReadFile("b"), "B", "b after the refused rename");
}

void NoreplaceMissing(const Scratch&) {
  WriteFile("a", "A");
  Renameat2OrSkip("a", "c", RENAME_NOREPLACE, "renameat2(RENAME_NOREPLACE) onto a free name", 0);
  ExpectBytes(ReadFile("c"), "A", "content under the new name");
  ExpectMissing("a", "lstat(a) after the rename");
}

void ExchangeFiles(const Scratch&) {
  WriteFile("a", "AAA");
  WriteFile("b", "BB");
  const ino_t ino_a = StatOk("a").st_ino;
  const ino_t ino_b = StatOk("b").st_ino;
  Renameat2OrSkip("a", "b", RENAME_EXCHANGE, "renameat2(RENAME_EXCHANGE) of two files", 0);
  ExpectBytes(ReadFile("a"), "BB", "a after the exchange");
  ExpectBytes(ReadFile("b"), "AAA", "b after the exchange");
  ExpectEq(StatOk("a").st_ino, ino_b, "st_ino of a after the exchange");
  ExpectEq(StatOk("b").st_ino, ino_a, "st_ino of b after the exchange");
}

void ExchangeFileAndDir(const Scratch&) {
  WriteFile("f", "F");
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  WriteFile("d/x", "X");
  Renameat2OrSkip("f", "d", RENAME_EXCHANGE, "renameat2(RENAME_EXCHANGE) of a file and a dir", 0);
  ExpectType(StatOk("f").st_mode, S_IFDIR, "f after the exchange");
  ExpectType(StatOk("d").st_mode, S_IFREG, "d after the exchange");
  ExpectBytes(ReadFile("f/x"), "X", "f/x after the exchange");
  ExpectBytes(ReadFile("d"), "F", "d after the exchange");
}

// ---- links --------------------------------------------------------------------

void HardLink(const Scratch&) {
  WriteFile("a", "one");
  ExpectOk(::link("a", "b"), "link(a, b)");
  const struct stat a = StatOk("a");
  const struct stat b = StatOk("b");
  ExpectEq(a.st_nlink, 2, "nlink of a");
  ExpectEq(b.st_nlink, 2, "nlink of b");
  ExpectEq(a.st_ino, b.st_ino, "st_ino of b vs a");
  {
    UniqueFd fd = OpenOk("b", O_WRONLY | O_APPEND);
    WriteAll(fd.get(), "two");
  }
  ExpectBytes(ReadFile("a"), "onetwo", "a after writing through b");
  ExpectEq(StatOk("a").st_size, 6, "size of a after writing through b");
  ExpectOk(::unlink("a"), "unlink(a)");
  ExpectEq(StatOk("b").st_nlink, 1, "nlink of b after unlinking a");
  ExpectBytes(ReadFile("b"), "onetwo", "b after unlinking a");
}

// A change through one name shows under the other at once, although the
// other name's attributes and pages were cached just before: sizes, bytes
// and link counts, after a close, a truncate(2), a link and an unlink. Ten
// rounds, as a stale cache is a race.
void HardLinkSharesChanges(const Scratch&) {
  WriteFile("a", "one");
  ExpectOk(::link("a", "b"), "link(a, b)");
  std::string want = "one";
  for (int round = 0; round < 10; ++round) {
    const std::string in = " (round " + std::to_string(round) + ")";
    // Caches the attributes and pages of a, and keeps a descriptor.
    StatOk("a");
    ExpectBytes(ReadFile("a"), want, "a at the start" + in);
    UniqueFd old_a = OpenOk("a", O_RDONLY);
    ExpectBytes(ReadToEnd(old_a.get()), want, "a through a descriptor" + in);

    {
      UniqueFd b = OpenOk("b", O_WRONLY | O_APPEND);
      WriteAll(b.get(), "+");
    }
    want += "+";
    ExpectEq(StatOk("a").st_size, want.size(), "size of a after appending through b" + in);
    ExpectBytes(ReadFile("a"), want, "a after appending through b" + in);
    ExpectBytes(PreadExactly(old_a.get(), want.size(), 0), want,
                "a through a descriptor opened before" + in);

    {
      UniqueFd b = OpenOk("b", O_WRONLY);
      want[0] = static_cast<char>('A' + round);
      WriteAll(b.get(), want.substr(0, 1));
    }
    ExpectBytes(ReadFile("a"), want, "a after a same-size write through b" + in);

    want.pop_back();
    ExpectOk(::truncate("b", static_cast<off_t>(want.size())), "truncate(b)");
    ExpectEq(StatOk("a").st_size, want.size(), "size of a after truncating b" + in);
    ExpectBytes(ReadFile("a"), want, "a after truncating b" + in);

    {
      UniqueFd b = OpenOk("b", O_WRONLY | O_APPEND);
      WriteAll(b.get(), "xy");
      want += "xy";
      ExpectBytes(ReadFile("a"), want, "a while b is still open" + in);
    }

    StatOk("b");
    ExpectOk(::link("a", "c"), "link(a, c)");
    ExpectEq(StatOk("b").st_nlink, 3, "nlink of b after link(a, c)" + in);
    ExpectOk(::unlink("c"), "unlink(c)");
    ExpectEq(StatOk("b").st_nlink, 2, "nlink of b after unlink(c)" + in);
  }
}

void LinkExisting(const Scratch&) {
  WriteFile("a", "a");
  WriteFile("b", "b");
  ExpectErrno(::link("a", "b"), EEXIST, "link onto an existing file");
  ExpectOk(::symlink("nowhere", "s"), "symlink(nowhere, s)");
  ExpectErrno(::link("a", "s"), EEXIST, "link onto a dangling symlink");
  ExpectErrno(::link("missing", "c"), ENOENT, "link of a missing file");
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  ExpectErrno(::link("d", "e"), EPERM, "link of a directory");
  ExpectEq(StatOk("a").st_nlink, 1, "nlink of a after the refused links");
}

void UnlinkOpenFile(const Scratch&) {
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  WriteFile("d/f", "keep");
  UniqueFd fd = OpenOk("d/f", O_RDWR);
  ExpectOk(::unlink("d/f"), "unlink of an open file");
  ExpectBytes(PreadExactly(fd.get(), 4, 0), "keep", "read through the fd after unlink");
  ExpectEq(ExpectOk(::pwrite(fd.get(), "more", 4, 4), "pwrite after unlink"), 4, "pwrite result");
  ExpectBytes(PreadExactly(fd.get(), 8, 0), "keepmore", "read back after unlink");
  ExpectEq(FstatOk(fd.get()).st_nlink, 0, "nlink of an unlinked open file");
  // No placeholder (like .fuse_hidden*) may show, and the directory can go.
  ExpectNames(ListDir("d"), DotsAnd({}), "readdir while the unlinked file is open");
  ExpectOk(::rmdir("d"), "rmdir while the unlinked file is open");
}

void SymlinkRelative(const Scratch&) {
  const std::string target = "../some where/dangling";
  ExpectOk(::symlink(target.c_str(), "link"), "symlink of a dangling relative target");
  char buffer[4096];
  const long n = ExpectOk(::readlink("link", buffer, sizeof buffer), "readlink(link)");
  ExpectBytes(std::string_view(buffer, static_cast<size_t>(n)), target, "readlink(link)");
  ExpectEq(LstatOk("link").st_size, target.size(), "lstat size of the symlink");
  // A short buffer truncates silently.
  ExpectEq(ExpectOk(::readlink("link", buffer, 4), "readlink into 4 bytes"), 4,
           "readlink into 4 bytes");
  ExpectBytes(std::string_view(buffer, 4), "../s", "truncated readlink");
}

void SymlinkAbsolute(const Scratch& scratch) {
  const std::string target = scratch.abs_dir + "/t";
  WriteFile("t", "absolute");
  ExpectOk(::symlink(target.c_str(), "link"), "symlink of an absolute target");
  char buffer[4096];
  const long n = ExpectOk(::readlink("link", buffer, sizeof buffer), "readlink(link)");
  ExpectBytes(std::string_view(buffer, static_cast<size_t>(n)), target, "readlink(link)");
  ExpectBytes(ReadFile("link"), "absolute", "read through the absolute symlink");
  ExpectOk(::symlink("/nonexistent/x/y", "dangling"), "symlink of a dangling absolute target");
  const long m = ExpectOk(::readlink("dangling", buffer, sizeof buffer), "readlink(dangling)");
  ExpectBytes(std::string_view(buffer, static_cast<size_t>(m)), "/nonexistent/x/y",
              "readlink(dangling)");
}

void SymlinkLongTarget(const Scratch&) {
  std::string target;
  while (target.size() < 1000) target += "component/";
  ExpectOk(::symlink(target.c_str(), "link"), "symlink of a 1000-byte target");
  char buffer[4096];
  const long n = ExpectOk(::readlink("link", buffer, sizeof buffer), "readlink(link)");
  ExpectBytes(std::string_view(buffer, static_cast<size_t>(n)), target, "readlink(link)");
}

void LstatVsStat(const Scratch&) {
  WriteFile("t", "12345");
  ExpectOk(::symlink("t", "link"), "symlink(t, link)");
  const struct stat l = LstatOk("link");
  const struct stat s = StatOk("link");
  ExpectType(l.st_mode, S_IFLNK, "lstat(link)");
  ExpectEq(l.st_size, 1, "lstat(link).st_size (target length)");
  ExpectType(s.st_mode, S_IFREG, "stat(link)");
  ExpectEq(s.st_size, 5, "stat(link).st_size");
  ExpectEq(s.st_ino, StatOk("t").st_ino, "stat(link).st_ino vs the target's");
  ExpectTrue(l.st_ino != s.st_ino, "the symlink to have its own inode", "the target's st_ino");
  ExpectOk(::symlink("nowhere", "dangling"), "symlink(nowhere, dangling)");
  struct stat st {};
  ExpectErrno(::stat("dangling", &st), ENOENT, "stat of a dangling symlink");
  ExpectType(LstatOk("dangling").st_mode, S_IFLNK, "lstat of a dangling symlink");
  ExpectErrno(::symlink("x", "t"), EEXIST, "symlink onto an existing file");
  char buffer[16];
  ExpectErrno(::readlink("t", buffer, sizeof buffer), EINVAL, "readlink of a regular file");
}

void OpenThroughSymlink(const Scratch&) {
  WriteFile("t", "through");
  ExpectOk(::symlink("t", "link"), "symlink(t, link)");
  ExpectBytes(ReadFile("link"), "through", "read through the symlink");
  WriteFile("link", "new");
  ExpectBytes(ReadFile("t"), "new", "target after writing through the symlink");
  ExpectType(LstatOk("link").st_mode, S_IFLNK, "link after writing through it");
  // O_CREAT through a dangling symlink creates its target.
  ExpectOk(::symlink("created", "dangling"), "symlink(created, dangling)");
  WriteFile("dangling", "made");
  ExpectBytes(ReadFile("created"), "made", "target created through a dangling symlink");
  // A symlink to a directory is a path component like any other.
  ExpectOk(::mkdir("d", 0755), "mkdir(d)");
  WriteFile("d/f", "in d");
  ExpectOk(::symlink("d", "dlink"), "symlink(d, dlink)");
  ExpectBytes(ReadFile("dlink/f"), "in d", "read through a symlinked directory");
  ExpectNames(ListDir("dlink"), DotsAnd({"f"}), "readdir through a symlinked directory");
  ExpectOk(::unlink("dlink"), "unlink of a symlink to a directory");
  ExpectType(StatOk("d").st_mode, S_IFDIR, "d after unlinking the symlink to it");
}

void SymlinkLoop(const Scratch&) {
  ExpectOk(::symlink("b", "a"), "symlink(b, a)");
  ExpectOk(::symlink("a", "b"), "symlink(a, b)");
  ExpectOpenErrno("a", O_RDONLY, ELOOP, "open of a symlink loop");
  struct stat st {};
  ExpectErrno(::stat("a", &st), ELOOP, "stat of a symlink loop");
  ExpectOk(::symlink("self", "self"), "symlink(self, self)");
  ExpectErrno(::stat("self", &st), ELOOP, "stat of a symlink to itself");
  ExpectOpenErrno("self", O_WRONLY | O_CREAT, ELOOP, "open(O_CREAT) of a symlink to itself");
}

}  // namespace

std::vector<Check> TreeChecks() {
  return {
      {"dir.mkdir_rmdir", MkdirRmdir},
      {"dir.rmdir_nonempty_enotempty", RmdirNonEmpty},
      {"dir.mkdir_existing_eexist", MkdirExisting},
      {"dir.unlink_dir_eisdir", UnlinkDir},
      {"dir.rmdir_file_enotdir", RmdirFile},
      {"dir.thousand_entries", ThousandEntries},
      {"dir.readdir_after_change", ReaddirAfterChange},
      {"dir.rewinddir_sees_change", RewinddirSeesChange},
      {"dir.read_on_across_changes", ReadOnAcrossChanges},
      {"dir.seekdir_returns_to_telldir", SeekdirReturns},
      {"dir.d_type_of_each_kind", DirentTypes},
      {"dir.nested_5_deep", Nested5Deep},
      {"rename.file_over_file", FileOverFile},
      {"rename.replaced_file_stays_readable", ReplacedFileStaysReadable},
      {"rename.file_into_other_dir", FileIntoOtherDir},
      {"rename.dir", DirRename},
      {"rename.dir_over_empty_dir", DirOverEmptyDir},
      {"rename.dir_over_nonempty_dir_enotempty", DirOverNonEmptyDir},
      {"rename.file_over_dir_eisdir", FileOverDir},
      {"rename.dir_over_file_enotdir", DirOverFile},
      {"rename.to_itself_noop", RenameToItself},
      {"rename.dir_into_own_subdir_einval", DirIntoOwnSubdir},
      {"rename.noreplace_existing_eexist", NoreplaceExisting},
      {"rename.noreplace_missing", NoreplaceMissing},
      {"rename.exchange_files", ExchangeFiles},
      {"rename.exchange_file_and_dir", ExchangeFileAndDir},
      {"link.hard", HardLink},
      {"link.hard_changes_show_under_every_name", HardLinkSharesChanges},
      {"link.existing_eexist", LinkExisting},
      {"link.unlink_open_file", UnlinkOpenFile},
      {"symlink.relative_dangling", SymlinkRelative},
      {"symlink.absolute", SymlinkAbsolute},
      {"symlink.long_target", SymlinkLongTarget},
      {"symlink.lstat_vs_stat", LstatVsStat},
      {"symlink.open_through", OpenThroughSymlink},
      {"symlink.loop_eloop", SymlinkLoop},
  };
}

}  // namespace ws
