// FsOps: each file operation as the syscalls that do it. Errors are the
// syscall's own errno, passed through unchanged.
#include "agent/fs_ops.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

namespace mproxy::agent {
namespace {

using proto::FsAttr;

// An error that only carries an errno: the peer gets the number, and a
// message would never be read.
Error Sys(int err = errno) { return Error(std::string(), err == 0 ? EIO : err); }

// Retries `fn` while it fails with EINTR.
template <typename Fn>
auto NoIntr(Fn fn) {
  decltype(fn()) rc;
  do {
    rc = fn();
  } while (rc == -1 && errno == EINTR);
  return rc;
}

FsAttr AttrFromStat(const struct stat& st) {
  FsAttr a;
  a.ino = st.st_ino;
  a.mode = st.st_mode;
  a.nlink =
      static_cast<uint32_t>(std::min<uint64_t>(st.st_nlink, std::numeric_limits<uint32_t>::max()));
  a.uid = st.st_uid;
  a.gid = st.st_gid;
  a.size = st.st_size < 0 ? 0 : static_cast<uint64_t>(st.st_size);
  a.blocks = st.st_blocks < 0 ? 0 : static_cast<uint64_t>(st.st_blocks);
  a.blksize = st.st_blksize < 0 ? 0 : static_cast<uint32_t>(st.st_blksize);
  a.rdev = st.st_rdev;
  a.atime = st.st_atim.tv_sec;
  a.atime_nsec = static_cast<uint32_t>(st.st_atim.tv_nsec);
  a.mtime = st.st_mtim.tv_sec;
  a.mtime_nsec = static_cast<uint32_t>(st.st_mtim.tv_nsec);
  a.ctime = st.st_ctim.tv_sec;
  a.ctime_nsec = static_cast<uint32_t>(st.st_ctim.tv_nsec);
  return a;
}

// Whether a listxattr call found no names: none set, or no xattr support.
bool NoNames(ssize_t n) { return n == 0 || (n < 0 && (errno == ENOTSUP || errno == EOPNOTSUPP)); }
bool NoXattrs(const char* path) { return NoNames(llistxattr(path, nullptr, 0)); }
bool NoXattrsFd(int fd) { return NoNames(flistxattr(fd, nullptr, 0)); }

// listxattrat(2) (Linux 6.13): the names of `name` in directory `dir_fd`,
// not following a symlink. Where the kernel lacks it (ENOSYS) or a seccomp
// filter refuses it (EPERM), nullopt, and from then on without trying.
std::optional<ssize_t> ListXattrAt(int dir_fd, const char* name) {
#ifdef __x86_64__
  constexpr long kListXattrAt = 465;
  static std::atomic<bool> missing{false};
  if (missing.load(std::memory_order_relaxed)) return std::nullopt;
  long n = syscall(kListXattrAt, dir_fd, name, AT_SYMLINK_NOFOLLOW, nullptr, 0);
  if (n < 0 && (errno == ENOSYS || errno == EPERM)) {
    missing.store(true, std::memory_order_relaxed);
    return std::nullopt;
  }
  return static_cast<ssize_t>(n);
#else
  (void)dir_fd;
  (void)name;
  return std::nullopt;
#endif
}

Result<FsAttr> Lstat(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return Sys();
  FsAttr a = AttrFromStat(st);
  a.no_xattrs = NoXattrs(path.c_str());
  return a;
}

Result<FsAttr> Fstat(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return Sys();
  FsAttr a = AttrFromStat(st);
  a.no_xattrs = NoXattrsFd(fd);
  return a;
}

Result<proto::FsEmptyReply> Empty(int rc) {
  if (rc != 0) return Sys();
  return proto::FsEmptyReply{};
}

Result<proto::FsAttrReply> AttrReply(Result<FsAttr> attr) {
  if (!attr) return attr.error();
  return proto::FsAttrReply{std::move(*attr)};
}

// lgetxattr and llistxattr share their calling convention: size 0 asks for
// the size, otherwise the value is read into a buffer of that size.
template <typename Fn>
Result<proto::FsXattrReply> XattrRead(uint32_t size, Fn fn) {
  proto::FsXattrReply out;
  size = std::min(size, proto::kFsMaxXattrSize);
  if (size == 0) {
    ssize_t n = NoIntr([&] { return fn(nullptr, 0); });
    if (n < 0) return Sys();
    out.size = static_cast<uint64_t>(n);
    return out;
  }
  out.data.resize(size);
  ssize_t n = NoIntr([&] { return fn(out.data.data(), out.data.size()); });
  if (n < 0) return Sys();
  out.data.resize(static_cast<size_t>(n));
  out.size = out.data.size();
  return out;
}

struct timespec TimeArg(const std::optional<int64_t>& sec, uint32_t nsec, bool now) {
  struct timespec ts {};
  if (sec) {
    ts.tv_sec = static_cast<time_t>(*sec);
    ts.tv_nsec = nsec;
  } else {
    ts.tv_nsec = now ? UTIME_NOW : UTIME_OMIT;
  }
  return ts;
}

// opendir(3) of `path`, close-on-exec; the caller owns the DIR.
Result<DIR*> OpenDir(const std::string& path) {
  int fd = NoIntr([&] { return open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
  if (fd < 0) return Sys();
  DIR* dir = fdopendir(fd);
  if (dir == nullptr) {
    int err = errno;
    close(fd);
    return Sys(err);
  }
  return dir;
}

// `size` bytes from `offset`, fewer only at end of file; looping over short
// reads and EINTR.
Result<std::string> ReadAt(int fd, uint64_t offset, uint32_t size) {
  std::string data(size, '\0');
  size_t got = 0;
  while (got < size) {
    ssize_t n = pread(fd, data.data() + got, size - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (got > 0) break;  // what was read is the answer; the error repeats next time
      return Sys();
    }
    if (n == 0) break;  // end of file
    got += static_cast<size_t>(n);
  }
  data.resize(got);
  return data;
}

// Entries from `dir`'s position on, with their attributes, until about
// `max_bytes` (0: the default) of reply; the position ends after the last.
// `xattrs`: each entry's no_xattrs too, at a listxattr per entry (about as
// much as its fstatat).
Result<proto::FsReaddirReply> ReadEntries(DIR* dir, uint32_t max_bytes, bool xattrs) {
  size_t budget = max_bytes != 0 ? max_bytes : proto::kFsDefaultReaddirBytes;
  // An entry's path for llistxattr, through the directory's own fd.
  const std::string proc_dir =
      xattrs ? "/proc/self/fd/" + std::to_string(dirfd(dir)) + "/" : std::string();
  size_t used = 64;  // the reply around the entries, generously
  proto::FsReaddirReply out;
  for (;;) {
    long before = telldir(dir);
    errno = 0;
    struct dirent* e = readdir(dir);
    if (e == nullptr) {
      if (errno != 0 && out.entries.empty()) return Sys();
      out.eof = errno == 0;  // after an error, the next READDIR reports it
      break;
    }
    size_t name_len = strlen(e->d_name);
    size_t cost = proto::FsDirEntryMaxEncodedSize(name_len);
    if (!out.entries.empty() && used + cost > budget) {
      seekdir(dir, before);  // this entry starts the next page
      break;
    }
    used += cost;
    proto::FsDirEntry& entry = out.entries.emplace_back();
    entry.name.assign(e->d_name, name_len);
    entry.offset = static_cast<uint64_t>(telldir(dir));
    entry.ino = e->d_ino;
    entry.type = e->d_type == DT_UNKNOWN ? 0 : DTTOIF(e->d_type);
    struct stat st {};
    if (fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      entry.attr = AttrFromStat(st);
      // Not asked, no_xattrs stays false (unknown). listxattrat where there
      // is one: a walk through /proc per entry was a third of the agent's
      // time listing a directory.
      if (xattrs) {
        if (auto n = ListXattrAt(dirfd(dir), e->d_name)) {
          entry.attr->no_xattrs = NoNames(*n);
        } else {
          entry.attr->no_xattrs = NoXattrs((proc_dir + e->d_name).c_str());
        }
      }
      entry.ino = st.st_ino;
      entry.type = st.st_mode & S_IFMT;
    }
  }
  return out;
}

}  // namespace

proto::FsReply FsOps::Run(uint64_t id, const proto::FsOpRequest& req) const {
  return std::visit(
      [&](const auto& r) -> proto::FsReply {
        auto result = Do(r);
        if (!result) return proto::MakeFsError(id, result.error().sys_errno());
        return proto::MakeFsReply(id, std::move(result).value());
      },
      req);
}

Result<std::shared_ptr<FsHandle>> FsOps::Handle(uint64_t fh,
                                                std::optional<FsHandle::Kind> kind) const {
  std::shared_ptr<FsHandle> h = handles_->Get(fh);
  if (h == nullptr || (kind && h->kind() != *kind)) return Sys(EBADF);
  return h;
}

mode_t FsOps::Stripped(uint32_t wanted, mode_t st_mode) const {
  return static_cast<mode_t>(wanted) & 0777 & umask_ & ~st_mode;
}

Result<proto::FsAttrReply> FsOps::CreatedAttr(const std::string& path, uint32_t mode) const {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return Sys();
  if (mode_t missing = Stripped(mode, st.st_mode); missing != 0 && !S_ISLNK(st.st_mode)) {
    if (chmod(path.c_str(), (st.st_mode & 07777) | missing) != 0 || lstat(path.c_str(), &st) != 0) {
      return Sys();
    }
  }
  FsAttr a = AttrFromStat(st);
  a.no_xattrs = NoXattrs(path.c_str());
  return proto::FsAttrReply{std::move(a)};
}

// --- attributes and directories ----------------------------------------------

Result<proto::FsAttrReply> FsOps::Do(const proto::FsGetattrRequest& r) const {
  if (r.path) return AttrReply(Lstat(*r.path));
  auto h = Handle(*r.fh, std::nullopt);
  if (!h) return h.error();
  return AttrReply(Fstat((*h)->fd()));
}

Result<proto::FsOpendirReply> FsOps::Do(const proto::FsOpendirRequest& r) const {
  if (handles_->Full()) return Sys(EMFILE);
  auto dir = OpenDir(r.path);
  if (!dir) return dir.error();
  uint64_t id = handles_->Add(std::make_shared<FsHandle>(*dir));
  if (id == 0) return Sys(EMFILE);
  return proto::FsOpendirReply{id};
}

// Entries are read from the handle's DIR, whose position is kept between
// calls: the usual READDIR continues where the last one stopped, and only
// a different offset costs a seekdir. Offsets are telldir cookies.
Result<proto::FsReaddirReply> FsOps::Do(const proto::FsReaddirRequest& r) const {
  auto h = Handle(r.fh, FsHandle::Kind::kDir);
  if (!h) return h.error();
  FsHandle& handle = **h;
  std::lock_guard<std::mutex> lock(handle.dir_mutex());
  DIR* dir = handle.dir();
  if (r.offset != handle.dir_pos()) {
    if (r.offset == 0) {
      rewinddir(dir);
    } else {
      seekdir(dir, static_cast<long>(r.offset));
    }
    handle.dir_pos() = r.offset;
  }
  auto out = ReadEntries(dir, r.max_bytes, r.xattrs);
  handle.dir_pos() = static_cast<uint64_t>(telldir(dir));
  return out;
}

Result<proto::FsReaddirReply> FsOps::Do(const proto::FsListdirRequest& r) const {
  auto dir = OpenDir(r.path);
  if (!dir) return dir.error();
  auto out = ReadEntries(*dir, r.max_bytes, r.xattrs);
  closedir(*dir);
  return out;
}

Result<proto::FsEmptyReply> FsOps::Do(const proto::FsReleasedirRequest& r) const {
  auto h = Handle(r.fh, FsHandle::Kind::kDir);
  if (!h) return h.error();
  if (handles_->Take(r.fh) == nullptr) return Sys(EBADF);  // released meanwhile
  return proto::FsEmptyReply{};
}

// --- open files ----------------------------------------------------------------

// Files are opened O_NONBLOCK: it changes nothing for regular files and
// directories, and keeps a FIFO or device opened by mistake from blocking a
// worker forever.
Result<proto::FsOpenReply> FsOps::Do(const proto::FsOpenRequest& r) const {
  if (handles_->Full()) return Sys(EMFILE);  // before creating anything
  int flags = proto::OpenFlagsToHost(r.flags) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  auto mode = static_cast<mode_t>(r.mode & 07777);
  const char* path = r.path.c_str();
  bool created = false;
  int fd = -1;
  if ((flags & O_CREAT) == 0 || (flags & O_EXCL) != 0 || Stripped(r.mode, 0) == 0) {
    fd = NoIntr([&] { return open(path, flags, mode); });
    created = fd >= 0 && (flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL);
  } else {
    // The umask would strip bits, so find out whether this open creates
    // the file: try exclusively first, then without O_CREAT. A file that
    // keeps appearing and vanishing in between gets a plain O_CREAT.
    for (int attempt = 0; attempt < 3 && fd < 0; ++attempt) {
      fd = NoIntr([&] { return open(path, flags | O_EXCL, mode); });
      if (fd >= 0) {
        created = true;
        break;
      }
      if (errno != EEXIST) return Sys();
      fd = NoIntr([&] { return open(path, flags & ~O_CREAT); });
      if (fd < 0 && errno != ENOENT) return Sys();
    }
    if (fd < 0) fd = NoIntr([&] { return open(path, flags, mode); });
  }
  if (fd < 0) return Sys();
  UniqueFd file(fd);
  struct stat st {};
  if (fstat(fd, &st) != 0) return Sys();
  if (mode_t missing = Stripped(r.mode, st.st_mode); created && missing != 0) {
    if (fchmod(fd, (st.st_mode & 07777) | missing) != 0 || fstat(fd, &st) != 0) return Sys();
  }
  proto::FsOpenReply out;
  out.attr = AttrFromStat(st);
  out.attr.no_xattrs = NoXattrsFd(fd);
  if (r.read_ahead > 0 && S_ISREG(st.st_mode) && (flags & O_ACCMODE) != O_WRONLY) {
    auto data = ReadAt(fd, 0, r.read_ahead);
    if (data) {
      out.data = std::move(*data);
      out.read_ahead_done = true;
    }
  }
  out.fh = handles_->Add(std::make_shared<FsHandle>(std::move(file)));
  if (out.fh == 0) return Sys(EMFILE);
  return out;
}

Result<proto::FsReadReply> FsOps::Do(const proto::FsReadRequest& r) const {
  auto h = Handle(r.fh, FsHandle::Kind::kFile);
  if (!h) return h.error();
  auto data = ReadAt((*h)->fd(), r.offset, r.size);
  if (!data) return data.error();
  return proto::FsReadReply{std::move(*data)};
}

Result<proto::FsWriteReply> FsOps::Do(const proto::FsWriteRequest& r) const {
  auto h = Handle(r.fh, FsHandle::Kind::kFile);
  if (!h) return h.error();
  int fd = (*h)->fd();
  size_t done = 0;
  while (done < r.data.size()) {
    ssize_t n =
        pwrite(fd, r.data.data() + done, r.data.size() - done, static_cast<off_t>(r.offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      // A short write, as write(2) reports one. An ordered write's sender
      // answered its caller already and can only pass on a failure.
      if (done > 0 && !r.ordered) break;
      return Sys();
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return proto::FsWriteReply{done};
}

Result<proto::FsEmptyReply> FsOps::Do(const proto::FsFsyncRequest& r) const {
  auto h = Handle(r.fh, std::nullopt);
  if (!h) return h.error();
  int fd = (*h)->fd();
  return Empty(NoIntr([&] { return r.datasync ? fdatasync(fd) : fsync(fd); }));
}

Result<proto::FsEmptyReply> FsOps::Do(const proto::FsReleaseRequest& r) const {
  auto h = Handle(r.fh, FsHandle::Kind::kFile);
  if (!h) return h.error();
  if (handles_->Take(r.fh) == nullptr) return Sys(EBADF);  // released meanwhile
  return proto::FsEmptyReply{};
}

Result<proto::FsEmptyReply> FsOps::Do(const proto::FsFallocateRequest& r) const {
  auto h = Handle(r.fh, FsHandle::Kind::kFile);
  if (!h) return h.error();
  int fd = (*h)->fd();
  return Empty(NoIntr([&] {
    return fallocate(fd, proto::FallocateModeToHost(r.mode), static_cast<off_t>(r.offset),
                     static_cast<off_t>(r.length));
  }));
}

// --- names -------------------------------------------------------------------

Result<proto::FsAttrReply> FsOps::Do(const proto::FsMkdirRequest& r) const {
  if (mkdir(r.path.c_str(), static_cast<mode_t>(r.mode & 07777)) != 0) return Sys();
  return CreatedAttr(r.path, r.mode);
}

Result<proto::FsAttrReply> FsOps::Do(const proto::FsMknodRequest& r) const {
  if (NoIntr([&] {
        return mknod(r.path.c_str(), static_cast<mode_t>(r.mode), static_cast<dev_t>(r.rdev));
      }) != 0) {
    return Sys();
  }
  return CreatedAttr(r.path, r.mode);
}

Result<proto::FsEmptyReply> FsOps::Do(const proto::FsUnlinkRequest& r) const {
  return Empty(unlink(r.path.c_str()));
}

Result<proto::FsEmptyReply> FsOps::Do(const proto::FsRmdirRequest& r) const {
  return Empty(rmdir(r.path.c_str()));
}

Result<proto::FsEmptyReply> FsOps::Do(const proto::FsRenameRequest& r) const {
  if (r.flags == 0) return Empty(rename(r.path.c_str(), r.new_path.c_str()));
  return Empty(renameat2(AT_FDCWD, r.path.c_str(), AT_FDCWD, r.new_path.c_str(),
                         proto::RenameFlagsToHost(r.flags)));
}

Result<proto::FsAttrReply> FsOps::Do(const proto::FsSymlinkRequest& r) const {
  if (symlink(r.target.c_str(), r.path.c_str()) != 0) return Sys();
  return AttrReply(Lstat(r.path));
}

Result<proto::FsReadlinkReply> FsOps::Do(const proto::FsReadlinkRequest& r) const {
  // Linux symlinks hold at most 4095 bytes; grow once or twice for others.
  std::string buf(4096, '\0');
  for (;;) {
    ssize_t n = readlink(r.path.c_str(), buf.data(), buf.size());
    if (n < 0) return Sys();
    if (static_cast<size_t>(n) < buf.size()) {
      buf.resize(static_cast<size_t>(n));
      return proto::FsReadlinkReply{std::move(buf)};
    }
    if (buf.size() >= 64 * 1024) return Sys(ENAMETOOLONG);
    buf.resize(buf.size() * 4);
  }
}

Result<proto::FsAttrReply> FsOps::Do(const proto::FsLinkRequest& r) const {
  if (link(r.path.c_str(), r.new_path.c_str()) != 0) return Sys();
  return AttrReply(Lstat(r.new_path));
}

// On a path, mode follows a final symlink (chmod(2): Linux symlinks have no
// mode of their own); owner, size and times apply to the path itself.
Result<proto::FsAttrReply> FsOps::Do(const proto::FsSetattrRequest& r) const {
  std::shared_ptr<FsHandle> h;
  if (r.fh) {
    auto found = Handle(*r.fh, std::nullopt);
    if (!found) return found.error();
    h = std::move(*found);
  }
  int fd = h ? h->fd() : -1;
  const char* path = r.path ? r.path->c_str() : nullptr;
  if (r.mode) {
    auto mode = static_cast<mode_t>(*r.mode & 07777);
    if ((h ? fchmod(fd, mode) : chmod(path, mode)) != 0) return Sys();
  }
  if (r.uid || r.gid) {
    auto uid = r.uid ? static_cast<uid_t>(*r.uid) : static_cast<uid_t>(-1);
    auto gid = r.gid ? static_cast<gid_t>(*r.gid) : static_cast<gid_t>(-1);
    if ((h ? fchown(fd, uid, gid) : lchown(path, uid, gid)) != 0) return Sys();
  }
  if (r.size) {
    auto size = static_cast<off_t>(*r.size);
    if (NoIntr([&] { return h ? ftruncate(fd, size) : truncate(path, size); }) != 0) return Sys();
  }
  if (r.atime || r.atime_now || r.mtime || r.mtime_now) {
    struct timespec ts[2] = {TimeArg(r.atime, r.atime_nsec, r.atime_now),
                             TimeArg(r.mtime, r.mtime_nsec, r.mtime_now)};
    if ((h ? futimens(fd, ts) : utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW)) != 0) {
      return Sys();
    }
  }
  return AttrReply(h ? Fstat(fd) : Lstat(*r.path));
}

Result<proto::FsStatfsReply> FsOps::Do(const proto::FsStatfsRequest& r) const {
  struct statvfs sv {};
  if (NoIntr([&] { return statvfs(r.path.c_str(), &sv); }) != 0) return Sys();
  proto::FsStatfsReply out;
  out.bsize = sv.f_bsize;
  out.frsize = sv.f_frsize;
  out.blocks = sv.f_blocks;
  out.bfree = sv.f_bfree;
  out.bavail = sv.f_bavail;
  out.files = sv.f_files;
  out.ffree = sv.f_ffree;
  out.favail = sv.f_favail;
  out.fsid = sv.f_fsid;
  out.flag = sv.f_flag;
  out.namemax = sv.f_namemax;
  return out;
}

Result<proto::FsEmptyReply> FsOps::Do(const proto::FsAccessRequest& r) const {
  return Empty(faccessat(AT_FDCWD, r.path.c_str(), proto::AccessMaskToHost(r.mask), 0));
}

// --- extended attributes (of the path itself, not a symlink's target) ---------

Result<proto::FsXattrReply> FsOps::Do(const proto::FsGetxattrRequest& r) const {
  return XattrRead(r.size, [&](char* buf, size_t size) {
    return lgetxattr(r.path.c_str(), r.name.c_str(), buf, size);
  });
}

Result<proto::FsEmptyReply> FsOps::Do(const proto::FsSetxattrRequest& r) const {
  return Empty(NoIntr([&] {
    return lsetxattr(r.path.c_str(), r.name.c_str(), r.value.data(), r.value.size(),
                     proto::XattrFlagsToHost(r.flags));
  }));
}

Result<proto::FsXattrReply> FsOps::Do(const proto::FsListxattrRequest& r) const {
  return XattrRead(r.size,
                   [&](char* buf, size_t size) { return llistxattr(r.path.c_str(), buf, size); });
}

Result<proto::FsEmptyReply> FsOps::Do(const proto::FsRemovexattrRequest& r) const {
  return Empty(NoIntr([&] { return lremovexattr(r.path.c_str(), r.name.c_str()); }));
}

}  // namespace mproxy::agent
