// File operations on the wire: the op numbers, portable flag bits, one typed
// request struct per op with the reply it gets, and the conversions to and
// from the generic FsRequest/FsReply fields. Spec: docs/PROTOCOL.md, "File
// operations". No other code reads or writes raw FsFields keys.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/result.h"
#include "proto/messages.h"

namespace mproxy::proto {

// Op numbers are never reused or renumbered.
enum class FsOp : uint32_t {
  kGetattr = 1,
  kOpendir = 2,
  kReaddir = 3,
  kReleasedir = 4,
  kOpen = 5,
  kRead = 6,
  kWrite = 7,
  kFsync = 8,
  kRelease = 9,
  kMkdir = 10,
  kMknod = 11,
  kUnlink = 12,
  kRmdir = 13,
  kRename = 14,
  kSymlink = 15,
  kReadlink = 16,
  kLink = 17,
  kSetattr = 18,
  kStatfs = 19,
  kAccess = 20,
  kGetxattr = 21,
  kSetxattr = 22,
  kListxattr = 23,
  kRemovexattr = 24,
  kFallocate = 25,
  kListdir = 26,
};

// "GETATTR", ...; nullptr for a number that is no op.
const char* FsOpName(uint32_t op);

// --- limits ----------------------------------------------------------------

inline constexpr uint32_t kFsMaxIo = 512 * 1024;  // READ size, WRITE data
inline constexpr uint32_t kFsDefaultReaddirBytes = 256 * 1024;
inline constexpr uint32_t kFsMaxReaddirBytes = 512 * 1024;
inline constexpr uint32_t kFsMaxXattrSize = 64 * 1024;  // Linux XATTR_SIZE_MAX
// The agent's limits: open handles per session, requests being worked on
// (and bytes of READ sizes plus WRITE data among them). Beyond them a request
// is answered with EMFILE or EAGAIN.
inline constexpr size_t kFsMaxHandles = 4096;
inline constexpr size_t kFsMaxInFlight = 1024;
inline constexpr size_t kFsMaxInFlightBytes = 32 * 1024 * 1024;

// An upper bound on the CBOR size of an FsDirEntry with a name of
// `name_size` bytes, so READDIR can fill a reply up to a byte budget.
inline constexpr size_t FsDirEntryMaxEncodedSize(size_t name_size) { return 200 + name_size; }

// --- portable flag bits ----------------------------------------------------
// O_* and friends differ between architectures, so the wire has its own bits.
// A request with a bit not listed here is refused with EINVAL.

struct FsOpenFlag {
  static constexpr uint32_t kRdonly = 0;  // access mode: the low two bits
  static constexpr uint32_t kWronly = 1;
  static constexpr uint32_t kRdwr = 2;
  static constexpr uint32_t kAccmode = 3;
  static constexpr uint32_t kCreat = 1u << 2;
  static constexpr uint32_t kExcl = 1u << 3;
  static constexpr uint32_t kTrunc = 1u << 4;
  static constexpr uint32_t kAppend = 1u << 5;
  static constexpr uint32_t kNofollow = 1u << 6;
  static constexpr uint32_t kDirectory = 1u << 7;
  static constexpr uint32_t kSync = 1u << 8;
  static constexpr uint32_t kDsync = 1u << 9;
  static constexpr uint32_t kNoatime = 1u << 10;
  static constexpr uint32_t kAll = (1u << 11) - 1;
};

struct FsRenameFlag {
  static constexpr uint32_t kNoreplace = 1;
  static constexpr uint32_t kExchange = 2;
};

struct FsXattrFlag {
  static constexpr uint32_t kCreate = 1;
  static constexpr uint32_t kReplace = 2;
};

struct FsFallocateFlag {
  static constexpr uint32_t kKeepSize = 1;
  static constexpr uint32_t kPunchHole = 2;
  static constexpr uint32_t kZeroRange = 4;
};

struct FsAccessFlag {
  static constexpr uint32_t kExists = 0;  // F_OK
  static constexpr uint32_t kExecute = 1;
  static constexpr uint32_t kWrite = 2;
  static constexpr uint32_t kRead = 4;
};

// Between wire bits and this host's. The ToHost functions expect values a
// parsed request has already checked; FromHost drops bits the wire lacks.
int OpenFlagsToHost(uint32_t wire);
uint32_t OpenFlagsFromHost(int host);
unsigned RenameFlagsToHost(uint32_t wire);
uint32_t RenameFlagsFromHost(unsigned host);
int XattrFlagsToHost(uint32_t wire);
uint32_t XattrFlagsFromHost(int host);
int FallocateModeToHost(uint32_t wire);
uint32_t FallocateModeFromHost(int host);
int AccessMaskToHost(uint32_t wire);
uint32_t AccessMaskFromHost(int host);

// Flags for FsFields declarations, besides kOptional and kRequired.
inline constexpr unsigned kFsPath = 4;  // string: an absolute path, no NUL bytes
inline constexpr unsigned kFsName = 8;  // string: not empty, no NUL bytes

// --- replies ---------------------------------------------------------------

// Only errno (0 on success).
struct FsEmptyReply {
  template <class S, class V>
  static void Fields(S&, V&) {}
  bool operator==(const FsEmptyReply&) const = default;
};

// The attributes of the file the op looked at, changed or created (key 4).
struct FsAttrReply {
  FsAttr attr;
  template <class S, class V>
  static void Fields(S&, V&) {}
  bool operator==(const FsAttrReply&) const = default;
};

struct FsOpenReply {
  uint64_t fh = 0;
  FsAttr attr;
  // With a request's read_ahead: the file's first bytes, `read_ahead` of
  // them or fewer at end of file, and read_ahead_done set. Not set: nothing
  // was read (not a regular file, opened for writing only, or an agent
  // that does not read ahead).
  std::string data;
  bool read_ahead_done = false;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "fh", s.fh, kRequired);
    v(2, "data", s.data, kOptional);
    v(3, "read_ahead_done", s.read_ahead_done, kOptional);
  }
  bool operator==(const FsOpenReply&) const = default;
};

struct FsOpendirReply {
  uint64_t fh = 0;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "fh", s.fh, kRequired);
  }
  bool operator==(const FsOpendirReply&) const = default;
};

struct FsReaddirReply {
  std::vector<FsDirEntry> entries;  // key 5
  bool eof = false;                 // no entries after these
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "eof", s.eof, kOptional);
  }
  bool operator==(const FsReaddirReply&) const = default;
};

struct FsReadReply {
  std::string data;  // shorter than asked only at end of file
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "data", s.data, kOptional);
  }
  bool operator==(const FsReadReply&) const = default;
};

struct FsWriteReply {
  uint64_t written = 0;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "written", s.written, kRequired);
  }
  bool operator==(const FsWriteReply&) const = default;
};

struct FsReadlinkReply {
  std::string target;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "target", s.target, kRequired);
  }
  bool operator==(const FsReadlinkReply&) const = default;
};

// statvfs(3) of the filesystem holding the path.
struct FsStatfsReply {
  uint64_t bsize = 0;
  uint64_t frsize = 0;
  uint64_t blocks = 0;  // in frsize units
  uint64_t bfree = 0;
  uint64_t bavail = 0;
  uint64_t files = 0;
  uint64_t ffree = 0;
  uint64_t favail = 0;
  uint64_t fsid = 0;
  uint64_t flag = 0;  // Linux ST_* bits: ST_RDONLY 1, ST_NOSUID 2, ST_NODEV 4, ...
  uint64_t namemax = 0;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "bsize", s.bsize, kOptional);
    v(2, "frsize", s.frsize, kOptional);
    v(3, "blocks", s.blocks, kOptional);
    v(4, "bfree", s.bfree, kOptional);
    v(5, "bavail", s.bavail, kOptional);
    v(6, "files", s.files, kOptional);
    v(7, "ffree", s.ffree, kOptional);
    v(8, "favail", s.favail, kOptional);
    v(9, "fsid", s.fsid, kOptional);
    v(10, "flag", s.flag, kOptional);
    v(11, "namemax", s.namemax, kOptional);
  }
  bool operator==(const FsStatfsReply&) const = default;
};

// GETXATTR and LISTXATTR: with size 0 asked, `size` is the size needed and
// `data` is empty; otherwise `data` holds the value (or the NUL-terminated
// names) and `size` is its length.
struct FsXattrReply {
  uint64_t size = 0;
  std::string data;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "size", s.size, kRequired);
    v(2, "data", s.data, kOptional);
  }
  bool operator==(const FsXattrReply&) const = default;
};

using FsOpReply =
    std::variant<FsEmptyReply, FsAttrReply, FsOpenReply, FsOpendirReply, FsReaddirReply,
                 FsReadReply, FsWriteReply, FsReadlinkReply, FsStatfsReply, FsXattrReply>;

// --- requests --------------------------------------------------------------
// Each struct names its op, its reply type and its fields (numbered per op
// from 1); Check() holds the rules a field list cannot say.

// lstat(path) or fstat(fh): exactly one of them.
struct FsGetattrRequest {
  static constexpr FsOp kOp = FsOp::kGetattr;
  using Reply = FsAttrReply;
  std::optional<std::string> path;
  std::optional<uint64_t> fh;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "path", s.path, kFsPath);
    v(2, "fh", s.fh, kOptional);
  }
  Status Check() const;
  bool operator==(const FsGetattrRequest&) const = default;
};

struct FsOpendirRequest {
  static constexpr FsOp kOp = FsOp::kOpendir;
  using Reply = FsOpendirReply;
  std::string path;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "path", s.path, kRequired | kFsPath);
  }
  bool operator==(const FsOpendirRequest&) const = default;
};

// Entries from `offset` (0: the start; else an entry's offset cookie), with
// their attributes, until about `max_bytes` of reply (0: the default). At
// least one entry unless the directory has no more.
struct FsReaddirRequest {
  static constexpr FsOp kOp = FsOp::kReaddir;
  using Reply = FsReaddirReply;
  uint64_t fh = 0;
  uint64_t offset = 0;
  uint32_t max_bytes = 0;
  bool xattrs = false;  // each entry's attr.no_xattrs wanted (a listxattr each)
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "fh", s.fh, kRequired);
    v(2, "offset", s.offset, kOptional);
    v(3, "max_bytes", s.max_bytes, kOptional);
    v(4, "xattrs", s.xattrs, kOptional);
  }
  Status Check() const;
  bool operator==(const FsReaddirRequest&) const = default;
};

struct FsReleasedirRequest {
  static constexpr FsOp kOp = FsOp::kReleasedir;
  using Reply = FsEmptyReply;
  uint64_t fh = 0;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "fh", s.fh, kRequired);
  }
  bool operator==(const FsReleasedirRequest&) const = default;
};

// open(path, flags, mode): `flags` are FsOpenFlag bits; `mode` (permission
// bits) applies when the file is created. In every `mode` of a request, file
// type bits are accepted and ignored, except MKNOD's, which say what to make.
struct FsOpenRequest {
  static constexpr FsOp kOp = FsOp::kOpen;
  using Reply = FsOpenReply;
  std::string path;
  uint32_t flags = 0;
  uint32_t mode = 0;
  // Also read the first this many bytes (at most kFsMaxIo) of a regular
  // file opened for reading, into the reply: a small file costs one round
  // trip instead of two.
  uint32_t read_ahead = 0;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "path", s.path, kRequired | kFsPath);
    v(2, "flags", s.flags, kOptional);
    v(3, "mode", s.mode, kOptional);
    v(4, "read_ahead", s.read_ahead, kOptional);
  }
  Status Check() const;
  bool operator==(const FsOpenRequest&) const = default;
};

struct FsReadRequest {
  static constexpr FsOp kOp = FsOp::kRead;
  using Reply = FsReadReply;
  uint64_t fh = 0;
  uint64_t offset = 0;
  uint32_t size = 0;  // at most kFsMaxIo
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "fh", s.fh, kRequired);
    v(2, "offset", s.offset, kRequired);
    v(3, "size", s.size, kRequired);
  }
  Status Check() const;
  bool operator==(const FsReadRequest&) const = default;
};

struct FsWriteRequest {
  static constexpr FsOp kOp = FsOp::kWrite;
  using Reply = FsWriteReply;
  uint64_t fh = 0;
  uint64_t offset = 0;  // ignored for a file opened with kAppend
  std::string data;     // at most kFsMaxIo bytes
  // The sender answered the write itself without waiting (write-behind):
  // it runs before any request that arrives after it.
  bool ordered = false;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "fh", s.fh, kRequired);
    v(2, "offset", s.offset, kRequired);
    v(3, "data", s.data, kRequired);
    v(4, "ordered", s.ordered, kOptional);
  }
  Status Check() const;
  bool operator==(const FsWriteRequest&) const = default;
};

// fsync, or fdatasync when `datasync`; a file or a directory handle.
struct FsFsyncRequest {
  static constexpr FsOp kOp = FsOp::kFsync;
  using Reply = FsEmptyReply;
  uint64_t fh = 0;
  bool datasync = false;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "fh", s.fh, kRequired);
    v(2, "datasync", s.datasync, kOptional);
  }
  bool operator==(const FsFsyncRequest&) const = default;
};

struct FsReleaseRequest {
  static constexpr FsOp kOp = FsOp::kRelease;
  using Reply = FsEmptyReply;
  uint64_t fh = 0;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "fh", s.fh, kRequired);
  }
  bool operator==(const FsReleaseRequest&) const = default;
};

struct FsMkdirRequest {
  static constexpr FsOp kOp = FsOp::kMkdir;
  using Reply = FsAttrReply;
  std::string path;
  uint32_t mode = 0;  // permission bits
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "path", s.path, kRequired | kFsPath);
    v(2, "mode", s.mode, kRequired);
  }
  Status Check() const;
  bool operator==(const FsMkdirRequest&) const = default;
};

// mknod(path, mode, rdev): `mode` has type bits (S_IFREG, S_IFIFO, S_IFSOCK,
// S_IFCHR, S_IFBLK) and permission bits; `rdev` is Linux's dev_t.
struct FsMknodRequest {
  static constexpr FsOp kOp = FsOp::kMknod;
  using Reply = FsAttrReply;
  std::string path;
  uint32_t mode = 0;
  uint64_t rdev = 0;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "path", s.path, kRequired | kFsPath);
    v(2, "mode", s.mode, kRequired);
    v(3, "rdev", s.rdev, kOptional);
  }
  Status Check() const;
  bool operator==(const FsMknodRequest&) const = default;
};

struct FsUnlinkRequest {
  static constexpr FsOp kOp = FsOp::kUnlink;
  using Reply = FsEmptyReply;
  std::string path;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "path", s.path, kRequired | kFsPath);
  }
  bool operator==(const FsUnlinkRequest&) const = default;
};

struct FsRmdirRequest {
  static constexpr FsOp kOp = FsOp::kRmdir;
  using Reply = FsEmptyReply;
  std::string path;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "path", s.path, kRequired | kFsPath);
  }
  bool operator==(const FsRmdirRequest&) const = default;
};

// rename(path, new_path), or renameat2 with FsRenameFlag bits.
struct FsRenameRequest {
  static constexpr FsOp kOp = FsOp::kRename;
  using Reply = FsEmptyReply;
  std::string path;
  std::string new_path;
  uint32_t flags = 0;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "path", s.path, kRequired | kFsPath);
    v(2, "new_path", s.new_path, kRequired | kFsPath);
    v(3, "flags", s.flags, kOptional);
  }
  Status Check() const;
  bool operator==(const FsRenameRequest&) const = default;
};

// symlink(target, path): creates `path` pointing at `target`.
struct FsSymlinkRequest {
  static constexpr FsOp kOp = FsOp::kSymlink;
  using Reply = FsAttrReply;
  std::string path;
  std::string target;  // any bytes but NUL; need not be absolute or exist
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "path", s.path, kRequired | kFsPath);
    v(2, "target", s.target, kRequired | kFsName);
  }
  bool operator==(const FsSymlinkRequest&) const = default;
};

struct FsReadlinkRequest {
  static constexpr FsOp kOp = FsOp::kReadlink;
  using Reply = FsReadlinkReply;
  std::string path;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "path", s.path, kRequired | kFsPath);
  }
  bool operator==(const FsReadlinkRequest&) const = default;
};

// link(path, new_path); the reply has new_path's attributes.
struct FsLinkRequest {
  static constexpr FsOp kOp = FsOp::kLink;
  using Reply = FsAttrReply;
  std::string path;
  std::string new_path;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "path", s.path, kRequired | kFsPath);
    v(2, "new_path", s.new_path, kRequired | kFsPath);
  }
  bool operator==(const FsLinkRequest&) const = default;
};

// Changes what is present, in this order: mode, owner (uid and/or gid),
// size, times. Exactly one of path and fh. A time is either given
// (seconds + nanoseconds) or "now", not both.
struct FsSetattrRequest {
  static constexpr FsOp kOp = FsOp::kSetattr;
  using Reply = FsAttrReply;
  std::optional<std::string> path;
  std::optional<uint64_t> fh;
  std::optional<uint32_t> mode;  // permission bits
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::optional<uint64_t> size;
  std::optional<int64_t> atime;
  uint32_t atime_nsec = 0;
  bool atime_now = false;
  std::optional<int64_t> mtime;
  uint32_t mtime_nsec = 0;
  bool mtime_now = false;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "path", s.path, kFsPath);
    v(2, "fh", s.fh, kOptional);
    v(3, "mode", s.mode, kOptional);
    v(4, "uid", s.uid, kOptional);
    v(5, "gid", s.gid, kOptional);
    v(6, "size", s.size, kOptional);
    v(7, "atime", s.atime, kOptional);
    v(8, "atime_nsec", s.atime_nsec, kOptional);
    v(9, "atime_now", s.atime_now, kOptional);
    v(10, "mtime", s.mtime, kOptional);
    v(11, "mtime_nsec", s.mtime_nsec, kOptional);
    v(12, "mtime_now", s.mtime_now, kOptional);
  }
  Status Check() const;
  bool operator==(const FsSetattrRequest&) const = default;
};

struct FsStatfsRequest {
  static constexpr FsOp kOp = FsOp::kStatfs;
  using Reply = FsStatfsReply;
  std::string path;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "path", s.path, kRequired | kFsPath);
  }
  bool operator==(const FsStatfsRequest&) const = default;
};

// faccessat(path, mask) with FsAccessFlag bits (0: does it exist).
struct FsAccessRequest {
  static constexpr FsOp kOp = FsOp::kAccess;
  using Reply = FsEmptyReply;
  std::string path;
  uint32_t mask = 0;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "path", s.path, kRequired | kFsPath);
    v(2, "mask", s.mask, kOptional);
  }
  Status Check() const;
  bool operator==(const FsAccessRequest&) const = default;
};

// lgetxattr; `size` 0 asks for the size needed. Sizes above
// kFsMaxXattrSize are treated as kFsMaxXattrSize.
struct FsGetxattrRequest {
  static constexpr FsOp kOp = FsOp::kGetxattr;
  using Reply = FsXattrReply;
  std::string path;
  std::string name;
  uint32_t size = 0;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "path", s.path, kRequired | kFsPath);
    v(2, "name", s.name, kRequired | kFsName);
    v(3, "size", s.size, kOptional);
  }
  bool operator==(const FsGetxattrRequest&) const = default;
};

struct FsSetxattrRequest {
  static constexpr FsOp kOp = FsOp::kSetxattr;
  using Reply = FsEmptyReply;
  std::string path;
  std::string name;
  std::string value;
  uint32_t flags = 0;  // FsXattrFlag bits
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "path", s.path, kRequired | kFsPath);
    v(2, "name", s.name, kRequired | kFsName);
    v(3, "value", s.value, kOptional);
    v(4, "flags", s.flags, kOptional);
  }
  Status Check() const;
  bool operator==(const FsSetxattrRequest&) const = default;
};

// llistxattr; `size` as for GETXATTR.
struct FsListxattrRequest {
  static constexpr FsOp kOp = FsOp::kListxattr;
  using Reply = FsXattrReply;
  std::string path;
  uint32_t size = 0;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "path", s.path, kRequired | kFsPath);
    v(2, "size", s.size, kOptional);
  }
  bool operator==(const FsListxattrRequest&) const = default;
};

struct FsRemovexattrRequest {
  static constexpr FsOp kOp = FsOp::kRemovexattr;
  using Reply = FsEmptyReply;
  std::string path;
  std::string name;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "path", s.path, kRequired | kFsPath);
    v(2, "name", s.name, kRequired | kFsName);
  }
  bool operator==(const FsRemovexattrRequest&) const = default;
};

// fallocate(fh, mode, offset, length) with FsFallocateFlag bits.
struct FsFallocateRequest {
  static constexpr FsOp kOp = FsOp::kFallocate;
  using Reply = FsEmptyReply;
  uint64_t fh = 0;
  uint32_t mode = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "fh", s.fh, kRequired);
    v(2, "mode", s.mode, kOptional);
    v(3, "offset", s.offset, kRequired);
    v(4, "length", s.length, kRequired);
  }
  Status Check() const;
  bool operator==(const FsFallocateRequest&) const = default;
};

// A whole small directory in one round trip: opendir(path), entries as
// READDIR gives them from the start up to `max_bytes` (0: the default),
// closedir. `eof` false means there are more: use OPENDIR/READDIR for all.
struct FsListdirRequest {
  static constexpr FsOp kOp = FsOp::kListdir;
  using Reply = FsReaddirReply;
  std::string path;
  uint32_t max_bytes = 0;
  bool xattrs = false;  // as FsReaddirRequest's
  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "path", s.path, kRequired | kFsPath);
    v(2, "max_bytes", s.max_bytes, kOptional);
    v(3, "xattrs", s.xattrs, kOptional);
  }
  Status Check() const;
  bool operator==(const FsListdirRequest&) const = default;
};

// In op-number order: alternative I is op I + 1.
using FsOpRequest =
    std::variant<FsGetattrRequest, FsOpendirRequest, FsReaddirRequest, FsReleasedirRequest,
                 FsOpenRequest, FsReadRequest, FsWriteRequest, FsFsyncRequest, FsReleaseRequest,
                 FsMkdirRequest, FsMknodRequest, FsUnlinkRequest, FsRmdirRequest, FsRenameRequest,
                 FsSymlinkRequest, FsReadlinkRequest, FsLinkRequest, FsSetattrRequest,
                 FsStatfsRequest, FsAccessRequest, FsGetxattrRequest, FsSetxattrRequest,
                 FsListxattrRequest, FsRemovexattrRequest, FsFallocateRequest,
                 FsListdirRequest>;

FsOp OpOf(const FsOpRequest& r);

// --- conversions -----------------------------------------------------------

// The typed form of `r`. The error names the op and the field and carries
// the errno to answer with (Error::sys_errno()): ENOSYS for an unknown op,
// EINVAL for anything else.
Result<FsOpRequest> ParseFsRequest(const FsRequest& r);
// Same, moving strings (WRITE data) out of `r` instead of copying them.
Result<FsOpRequest> ParseFsRequest(FsRequest&& r);
FsRequest MakeFsRequest(uint64_t id, const FsOpRequest& r);
// Same, moving strings (WRITE data) out of `r` instead of copying them.
FsRequest MakeFsRequest(uint64_t id, FsOpRequest&& r);
// "READ" or "OPEN /path": the op's name and its path, if it has one, for
// logs.
std::string DescribeFsRequest(const FsOpRequest& r);

FsReply MakeFsReply(uint64_t id, FsOpReply r);
FsReply MakeFsError(uint64_t id, int err);

// The typed reply to a request of op `op`: a failed op gives an Error with
// sys_errno() set to the reply's errno; a reply that lacks what the op's
// reply needs (or a negative errno) gives an Error with EIO.
Status ParseFsReply(FsOp op, const FsReply& r, FsEmptyReply* out);
Status ParseFsReply(FsOp op, const FsReply& r, FsAttrReply* out);
Status ParseFsReply(FsOp op, const FsReply& r, FsOpenReply* out);
Status ParseFsReply(FsOp op, const FsReply& r, FsOpendirReply* out);
Status ParseFsReply(FsOp op, const FsReply& r, FsReaddirReply* out);
Status ParseFsReply(FsOp op, const FsReply& r, FsReadReply* out);
Status ParseFsReply(FsOp op, const FsReply& r, FsWriteReply* out);
Status ParseFsReply(FsOp op, const FsReply& r, FsReadlinkReply* out);
Status ParseFsReply(FsOp op, const FsReply& r, FsStatfsReply* out);
Status ParseFsReply(FsOp op, const FsReply& r, FsXattrReply* out);

// The errno to answer a failed op with, from ParseFsReply's Error: always
// positive (EIO when the Error carries none).
inline int FsErrno(const Error& e) { return e.sys_errno() > 0 ? e.sys_errno() : EIO; }

// ParseFsReply for the reply type of request type Req.
template <class Req>
Result<typename Req::Reply> ParseFsReplyFor(const FsReply& r) {
  typename Req::Reply out;
  if (auto s = ParseFsReply(Req::kOp, r, &out); !s) return s.error();
  return out;
}

}  // namespace mproxy::proto
