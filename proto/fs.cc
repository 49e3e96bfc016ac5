// Typed file operations <-> FsRequest/FsReply fields, driven by each struct's
// Fields() list, plus the portable flag bits <-> this host's.
#include "proto/fs.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <limits>
#include <type_traits>
#include <utility>

#ifndef FALLOC_FL_KEEP_SIZE
#include <linux/falloc.h>
#endif

namespace mproxy::proto {

// FsReply.errno carries Linux's numbers as asm-generic defines them (x86_64
// and aarch64 alike). Building on a host that numbers them differently must
// fail here rather than send wrong numbers.
static_assert(ENOENT == 2 && EIO == 5 && EBADF == 9 && EAGAIN == 11 && EACCES == 13 &&
                  EEXIST == 17 && EXDEV == 18 && ENOTDIR == 20 && EISDIR == 21 && EINVAL == 22 &&
                  EMFILE == 24 && EFBIG == 27 && ENOSPC == 28 && EROFS == 30 && EMLINK == 31 &&
                  ERANGE == 34 && ENAMETOOLONG == 36 && ENOSYS == 38 && ENOTEMPTY == 39 &&
                  ELOOP == 40 && ENODATA == 61 && EOPNOTSUPP == 95 && EDQUOT == 122,
              "FsReply errno numbers are Linux asm-generic ones");

namespace {

template <typename T>
struct IsOptional : std::false_type {};
template <typename T>
struct IsOptional<std::optional<T>> : std::true_type {};

constexpr uint64_t kMaxOffset = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

const char* const kOpNames[] = {
    "GETATTR",  "OPENDIR",   "READDIR",     "RELEASEDIR", "OPEN",    "READ",   "WRITE",
    "FSYNC",    "RELEASE",   "MKDIR",       "MKNOD",      "UNLINK",  "RMDIR",  "RENAME",
    "SYMLINK",  "READLINK",  "LINK",        "SETATTR",    "STATFS",  "ACCESS", "GETXATTR",
    "SETXATTR", "LISTXATTR", "REMOVEXATTR", "FALLOCATE",  "LISTDIR",
};
static_assert(std::size(kOpNames) == std::variant_size_v<FsOpRequest>);

template <size_t... I>
constexpr bool VariantInOpOrder(std::index_sequence<I...>) {
  return ((static_cast<size_t>(std::variant_alternative_t<I, FsOpRequest>::kOp) == I + 1) && ...);
}
static_assert(VariantInOpOrder(std::make_index_sequence<std::variant_size_v<FsOpRequest>>{}),
              "FsOpRequest alternatives must follow FsOp numbering");

Error Invalid(const std::string& what) { return Error(what, EINVAL); }

std::string Octal(uint32_t v) {
  char buf[16];
  snprintf(buf, sizeof buf, "0%o", v);
  return buf;
}

std::string Hex(uint32_t v) {
  char buf[16];
  snprintf(buf, sizeof buf, "0x%x", v);
  return buf;
}

Error FieldError(const char* name, const std::string& what) {
  return Invalid(std::string("field '") + name + "': " + what);
}

// --- reading fields --------------------------------------------------------

const char* KindOf(const FsValue& v) {
  if (std::holds_alternative<uint64_t>(v)) return "an unsigned integer";
  if (std::holds_alternative<int64_t>(v)) return "a negative integer";
  return "a string";
}

Status Read(const FsValue& v, uint64_t& out) {
  const auto* u = std::get_if<uint64_t>(&v);
  if (u == nullptr) return Invalid(std::string("expected an unsigned integer, got ") + KindOf(v));
  out = *u;
  return Ok();
}

Status Read(const FsValue& v, uint32_t& out) {
  uint64_t u = 0;
  if (auto s = Read(v, u); !s) return s;
  if (u > std::numeric_limits<uint32_t>::max()) {
    return Invalid("value " + std::to_string(u) + " out of range");
  }
  out = static_cast<uint32_t>(u);
  return Ok();
}

Status Read(const FsValue& v, int64_t& out) {
  if (const auto* i = std::get_if<int64_t>(&v)) {
    out = *i;
    return Ok();
  }
  const auto* u = std::get_if<uint64_t>(&v);
  if (u == nullptr) return Invalid("expected an integer, got a string");
  if (*u > kMaxOffset) return Invalid("value " + std::to_string(*u) + " out of range");
  out = static_cast<int64_t>(*u);
  return Ok();
}

Status Read(const FsValue& v, bool& out) {
  uint64_t u = 0;
  if (auto s = Read(v, u); !s) return s;
  if (u > 1) return Invalid("expected 0 or 1, got " + std::to_string(u));
  out = u == 1;
  return Ok();
}

Status Read(const FsValue& v, std::string& out) {
  const auto* str = std::get_if<std::string>(&v);
  if (str == nullptr) return Invalid(std::string("expected a string, got ") + KindOf(v));
  out = *str;
  return Ok();
}

// Same, but takes the string out of `v` (file data need not be copied).
Status Read(FsValue&& v, std::string& out) {
  auto* str = std::get_if<std::string>(&v);
  if (str == nullptr) return Invalid(std::string("expected a string, got ") + KindOf(v));
  out = std::move(*str);
  return Ok();
}

template <typename T>
Status Read(FsValue&& v, T& out) {
  return Read(static_cast<const FsValue&>(v), out);
}

Status CheckString(const std::string& s, unsigned flags) {
  if ((flags & (kFsPath | kFsName)) == 0) return Ok();
  if (s.empty()) return Invalid("is empty");
  if (s.find('\0') != std::string::npos) return Invalid("contains a NUL byte");
  if ((flags & kFsPath) != 0 && s[0] != '/') return Invalid("is not an absolute path");
  return Ok();
}

// Fills `out` from `fields`. With an rvalue map, strings are moved out.
template <typename Fields, typename T>
Status FromFields(Fields&& fields, T& out) {
  constexpr bool kMove = !std::is_lvalue_reference_v<Fields>;
  auto Take = [](auto& value, auto& member) {
    if constexpr (kMove) {
      return Read(std::move(value), member);
    } else {
      return Read(value, member);
    }
  };
  Status st;
  auto get = [&](uint32_t key, const char* name, auto& member, unsigned flags) {
    if (!st) return;
    auto it = fields.find(key);
    if (it == fields.end()) {
      if ((flags & kRequired) != 0)
        st = Invalid(std::string("missing required field '") + name + "'");
      return;
    }
    using M = std::decay_t<decltype(member)>;
    Status s;
    if constexpr (IsOptional<M>::value) {
      typename M::value_type v{};
      s = Take(it->second, v);
      if (s) {
        if constexpr (std::is_same_v<typename M::value_type, std::string>)
          s = CheckString(v, flags);
      }
      if (s) member = std::move(v);
    } else {
      s = Take(it->second, member);
      if (s) {
        if constexpr (std::is_same_v<M, std::string>) s = CheckString(member, flags);
      }
    }
    if (!s) st = FieldError(name, s.error().message());
  };
  T::Fields(out, get);
  return st;
}

// --- writing fields --------------------------------------------------------

FsValue Wire(uint64_t v) { return v; }
FsValue Wire(uint32_t v) { return uint64_t{v}; }
// Non-negative values go out as unsigned integers, which is how CBOR
// encodes them and how they decode again.
FsValue Wire(int64_t v) { return v >= 0 ? FsValue(static_cast<uint64_t>(v)) : FsValue(v); }
FsValue Wire(bool v) { return uint64_t{v ? 1u : 0u}; }
FsValue Wire(const std::string& v) { return v; }
FsValue Wire(std::string&& v) { return std::move(v); }

// Required fields are always written; optional ones only when set (or, for
// plain members, when not at their default). From an rvalue, strings move.
template <typename T>
FsFields ToFields(T&& in) {
  using Plain = std::remove_cvref_t<T>;
  constexpr bool kMove = !std::is_lvalue_reference_v<T>;
  FsFields out;
  auto put = [&](uint32_t key, const char*, auto& member, unsigned flags) {
    using M = std::decay_t<decltype(member)>;
    if constexpr (IsOptional<M>::value) {
      if (!member.has_value()) return;
      if constexpr (kMove) {
        out.emplace(key, Wire(std::move(*member)));
      } else {
        out.emplace(key, Wire(*member));
      }
    } else if ((flags & kRequired) != 0 || !(member == M{})) {
      if constexpr (kMove) {
        out.emplace(key, Wire(std::move(member)));
      } else {
        out.emplace(key, Wire(member));
      }
    }
  };
  Plain::Fields(in, put);
  return out;
}

template <typename T>
concept HasAttr = requires(T t) {
  { t.attr } -> std::convertible_to<FsAttr>;
};
template <typename T>
concept HasEntries = requires(T t) {
  { t.entries } -> std::convertible_to<std::vector<FsDirEntry>>;
};
template <typename T>
concept HasCheck = requires(const T t) {
  { t.Check() } -> std::same_as<Status>;
};

template <size_t I = 0, typename Fields>
Result<FsOpRequest> ParseAs(uint32_t op, Fields&& fields) {
  if constexpr (I < std::variant_size_v<FsOpRequest>) {
    using T = std::variant_alternative_t<I, FsOpRequest>;
    if (op != static_cast<uint32_t>(T::kOp))
      return ParseAs<I + 1>(op, std::forward<Fields>(fields));
    T req;
    Status s = FromFields(std::forward<Fields>(fields), req);
    if constexpr (HasCheck<T>) {
      if (s) s = req.Check();
    }
    if (!s) return s.error().Wrap(kOpNames[I]);
    return FsOpRequest(std::move(req));
  } else {
    return Error("unknown op " + std::to_string(op), ENOSYS);
  }
}

template <typename T>
Status ParseReply(FsOp op, const FsReply& r, T* out) {
  const char* name = FsOpName(static_cast<uint32_t>(op));
  std::string what = std::string(name != nullptr ? name : "unknown op") + " reply";
  if (r.err != 0) {
    if (r.err < 0) return Error(what + ": negative errno " + std::to_string(r.err), EIO);
    return Error::FromErrno(name != nullptr ? name : "unknown op", r.err);
  }
  *out = T{};
  if (auto s = FromFields(r.fields, *out); !s) return Error(what + ": " + s.error().message(), EIO);
  if constexpr (HasAttr<T>) {
    if (!r.attr) return Error(what + ": missing attr", EIO);
    out->attr = *r.attr;
  }
  if constexpr (HasEntries<T>) out->entries = r.entries;
  return Ok();
}

Status NotAbove(const char* field, uint64_t value, uint64_t max) {
  if (value <= max) return Ok();
  return FieldError(field, std::to_string(value) + " exceeds the maximum " + std::to_string(max));
}

// Permission bits; file type bits are allowed (a FUSE peer passes them
// along) and ignored.
Status Permissions(const char* field, uint32_t mode) {
  if ((mode & ~(07777u | S_IFMT)) == 0) return Ok();
  return FieldError(field, Octal(mode) + " has bits beyond 07777 and the file type");
}

Status KnownBits(const char* field, uint32_t value, uint32_t known) {
  if ((value & ~known) == 0) return Ok();
  return FieldError(field, "unknown bits " + Hex(value & ~known));
}

Status ExactlyOne(bool path, bool fh) {
  if (path != fh) return Ok();
  return Invalid("exactly one of 'path' and 'fh' is needed");
}

}  // namespace

const char* FsOpName(uint32_t op) {
  if (op == 0 || op > std::size(kOpNames)) return nullptr;
  return kOpNames[op - 1];
}

FsOp OpOf(const FsOpRequest& r) { return static_cast<FsOp>(r.index() + 1); }

// --- flags -------------------------------------------------------------------

namespace {

// One flag: its wire bit and this host's.
struct FlagBit {
  uint32_t wire;
  int host;
};

template <size_t N>
int BitsToHost(uint32_t wire, const FlagBit (&bits)[N]) {
  int host = 0;
  for (const FlagBit& b : bits) {
    if (wire & b.wire) host |= b.host;
  }
  return host;
}

template <size_t N>
uint32_t BitsFromHost(int host, const FlagBit (&bits)[N]) {
  uint32_t wire = 0;
  for (const FlagBit& b : bits) {
    if (host & b.host) wire |= b.wire;
  }
  return wire;
}

// The open flags that are one bit on both sides; the access mode and the
// sync flags (O_SYNC includes O_DSYNC's bit on Linux) are handled apart.
constexpr FlagBit kOpenBits[] = {
    {FsOpenFlag::kCreat, O_CREAT},       {FsOpenFlag::kExcl, O_EXCL},
    {FsOpenFlag::kTrunc, O_TRUNC},       {FsOpenFlag::kAppend, O_APPEND},
    {FsOpenFlag::kNofollow, O_NOFOLLOW}, {FsOpenFlag::kDirectory, O_DIRECTORY},
    {FsOpenFlag::kNoatime, O_NOATIME}};
constexpr FlagBit kRenameBits[] = {{FsRenameFlag::kNoreplace, RENAME_NOREPLACE},
                                   {FsRenameFlag::kExchange, RENAME_EXCHANGE}};
constexpr FlagBit kXattrBits[] = {{FsXattrFlag::kCreate, XATTR_CREATE},
                                  {FsXattrFlag::kReplace, XATTR_REPLACE}};
constexpr FlagBit kFallocateBits[] = {{FsFallocateFlag::kKeepSize, FALLOC_FL_KEEP_SIZE},
                                      {FsFallocateFlag::kPunchHole, FALLOC_FL_PUNCH_HOLE},
                                      {FsFallocateFlag::kZeroRange, FALLOC_FL_ZERO_RANGE}};
// Both sides say "exists" with 0 (F_OK).
constexpr FlagBit kAccessBits[] = {
    {FsAccessFlag::kRead, R_OK}, {FsAccessFlag::kWrite, W_OK}, {FsAccessFlag::kExecute, X_OK}};

}  // namespace

int OpenFlagsToHost(uint32_t wire) {
  int host = 0;
  switch (wire & FsOpenFlag::kAccmode) {
    case FsOpenFlag::kWronly:
      host = O_WRONLY;
      break;
    case FsOpenFlag::kRdwr:
      host = O_RDWR;
      break;
    default:
      host = O_RDONLY;
      break;
  }
  host |= BitsToHost(wire, kOpenBits);
  if (wire & FsOpenFlag::kSync) host |= O_SYNC;
  if (wire & FsOpenFlag::kDsync) host |= O_DSYNC;
  return host;
}

uint32_t OpenFlagsFromHost(int host) {
  uint32_t wire = 0;
  switch (host & O_ACCMODE) {
    case O_WRONLY:
      wire = FsOpenFlag::kWronly;
      break;
    case O_RDWR:
      wire = FsOpenFlag::kRdwr;
      break;
    default:
      wire = FsOpenFlag::kRdonly;
      break;
  }
  wire |= BitsFromHost(host, kOpenBits);
  if ((host & O_SYNC) == O_SYNC) {
    wire |= FsOpenFlag::kSync;
  } else if (host & O_DSYNC) {
    wire |= FsOpenFlag::kDsync;
  }
  return wire;
}

unsigned RenameFlagsToHost(uint32_t wire) {
  return static_cast<unsigned>(BitsToHost(wire, kRenameBits));
}
uint32_t RenameFlagsFromHost(unsigned host) {
  return BitsFromHost(static_cast<int>(host), kRenameBits);
}
int XattrFlagsToHost(uint32_t wire) { return BitsToHost(wire, kXattrBits); }
uint32_t XattrFlagsFromHost(int host) { return BitsFromHost(host, kXattrBits); }
int FallocateModeToHost(uint32_t wire) { return BitsToHost(wire, kFallocateBits); }
uint32_t FallocateModeFromHost(int host) { return BitsFromHost(host, kFallocateBits); }
int AccessMaskToHost(uint32_t wire) { return F_OK | BitsToHost(wire, kAccessBits); }
uint32_t AccessMaskFromHost(int host) {
  return FsAccessFlag::kExists | BitsFromHost(host, kAccessBits);
}

// --- per-op rules ------------------------------------------------------------

Status FsGetattrRequest::Check() const { return ExactlyOne(path.has_value(), fh.has_value()); }

Status FsReaddirRequest::Check() const {
  if (auto s = NotAbove("offset", offset, kMaxOffset); !s) return s;
  return NotAbove("max_bytes", max_bytes, kFsMaxReaddirBytes);
}

Status FsListdirRequest::Check() const {
  return NotAbove("max_bytes", max_bytes, kFsMaxReaddirBytes);
}

Status FsOpenRequest::Check() const {
  if (auto s = KnownBits("flags", flags, FsOpenFlag::kAll); !s) return s;
  if ((flags & FsOpenFlag::kAccmode) == FsOpenFlag::kAccmode) {
    return FieldError("flags", "access mode 3 is none of 0 (read), 1 (write), 2 (both)");
  }
  if (auto s = NotAbove("read_ahead", read_ahead, kFsMaxIo); !s) return s;
  return Permissions("mode", mode);
}

Status FsReadRequest::Check() const {
  if (auto s = NotAbove("offset", offset, kMaxOffset); !s) return s;
  return NotAbove("size", size, kFsMaxIo);
}

Status FsWriteRequest::Check() const {
  if (data.size() > kFsMaxIo) {
    return FieldError("data", std::to_string(data.size()) + " bytes exceed the maximum " +
                                  std::to_string(kFsMaxIo));
  }
  return NotAbove("offset", offset, kMaxOffset - data.size());
}

Status FsMkdirRequest::Check() const { return Permissions("mode", mode); }

Status FsMknodRequest::Check() const {
  switch (mode & S_IFMT) {
    case S_IFREG:
    case S_IFIFO:
    case S_IFSOCK:
    case S_IFCHR:
    case S_IFBLK:
      break;
    default:
      return FieldError("mode", Octal(mode) + " is no regular file, FIFO, socket or device");
  }
  return Permissions("mode", mode);
}

Status FsRenameRequest::Check() const {
  if (auto s = KnownBits("flags", flags, FsRenameFlag::kNoreplace | FsRenameFlag::kExchange); !s) {
    return s;
  }
  if (flags == (FsRenameFlag::kNoreplace | FsRenameFlag::kExchange)) {
    return FieldError("flags", "NOREPLACE and EXCHANGE exclude each other");
  }
  return Ok();
}

Status FsSetattrRequest::Check() const {
  if (auto s = ExactlyOne(path.has_value(), fh.has_value()); !s) return s;
  if (mode) {
    if (auto s = Permissions("mode", *mode); !s) return s;
  }
  if (size) {
    if (auto s = NotAbove("size", *size, kMaxOffset); !s) return s;
  }
  struct Time {
    const char* name;
    const char* nsec_name;
    bool given;
    uint32_t nsec;
    bool now;
  };
  for (const Time& t : {Time{"atime", "atime_nsec", atime.has_value(), atime_nsec, atime_now},
                        Time{"mtime", "mtime_nsec", mtime.has_value(), mtime_nsec, mtime_now}}) {
    if (auto s = NotAbove(t.nsec_name, t.nsec, 999999999); !s) return s;
    if (t.nsec != 0 && !t.given) {
      return Invalid(std::string("field '") + t.nsec_name + "' without '" + t.name + "'");
    }
    if (t.given && t.now) {
      return Invalid(std::string("field '") + t.name + "' and '" + t.name +
                     "_now' exclude each other");
    }
  }
  return Ok();
}

Status FsAccessRequest::Check() const {
  return KnownBits("mask", mask,
                   FsAccessFlag::kRead | FsAccessFlag::kWrite | FsAccessFlag::kExecute);
}

Status FsSetxattrRequest::Check() const {
  return KnownBits("flags", flags, FsXattrFlag::kCreate | FsXattrFlag::kReplace);
}

Status FsFallocateRequest::Check() const {
  uint32_t known =
      FsFallocateFlag::kKeepSize | FsFallocateFlag::kPunchHole | FsFallocateFlag::kZeroRange;
  if (auto s = KnownBits("mode", mode, known); !s) return s;
  if (auto s = NotAbove("offset", offset, kMaxOffset); !s) return s;
  return NotAbove("length", length, kMaxOffset);
}

// --- conversions -------------------------------------------------------------

Result<FsOpRequest> ParseFsRequest(const FsRequest& r) { return ParseAs(r.op, r.fields); }
Result<FsOpRequest> ParseFsRequest(FsRequest&& r) { return ParseAs(r.op, std::move(r.fields)); }

FsRequest MakeFsRequest(uint64_t id, const FsOpRequest& r) {
  FsRequest out;
  out.id = id;
  out.op = static_cast<uint32_t>(OpOf(r));
  out.fields = std::visit([](const auto& req) { return ToFields(req); }, r);
  return out;
}

FsRequest MakeFsRequest(uint64_t id, FsOpRequest&& r) {
  FsRequest out;
  out.id = id;
  out.op = static_cast<uint32_t>(OpOf(r));
  out.fields = std::visit([](auto&& req) { return ToFields(std::move(req)); }, std::move(r));
  return out;
}

std::string DescribeFsRequest(const FsOpRequest& r) {
  return std::visit(
      [](const auto& req) {
        using T = std::decay_t<decltype(req)>;
        std::string out = kOpNames[static_cast<uint32_t>(T::kOp) - 1];
        if constexpr (requires { req.path; }) {
          if constexpr (IsOptional<decltype(T::path)>::value) {
            if (req.path) out += " " + *req.path;
          } else {
            out += " " + req.path;
          }
        }
        return out;
      },
      r);
}

FsReply MakeFsReply(uint64_t id, FsOpReply r) {
  FsReply out;
  out.id = id;
  std::visit(
      [&out](auto&& reply) {
        using T = std::decay_t<decltype(reply)>;
        if constexpr (HasAttr<T>) out.attr = reply.attr;
        if constexpr (HasEntries<T>) out.entries = std::move(reply.entries);
        out.fields = ToFields(std::move(reply));
      },
      std::move(r));
  return out;
}

FsReply MakeFsError(uint64_t id, int err) {
  FsReply out;
  out.id = id;
  out.err = err;
  return out;
}

Status ParseFsReply(FsOp op, const FsReply& r, FsEmptyReply* out) { return ParseReply(op, r, out); }
Status ParseFsReply(FsOp op, const FsReply& r, FsAttrReply* out) { return ParseReply(op, r, out); }
Status ParseFsReply(FsOp op, const FsReply& r, FsOpenReply* out) { return ParseReply(op, r, out); }
Status ParseFsReply(FsOp op, const FsReply& r, FsOpendirReply* out) {
  return ParseReply(op, r, out);
}
Status ParseFsReply(FsOp op, const FsReply& r, FsReaddirReply* out) {
  return ParseReply(op, r, out);
}
Status ParseFsReply(FsOp op, const FsReply& r, FsReadReply* out) { return ParseReply(op, r, out); }
Status ParseFsReply(FsOp op, const FsReply& r, FsWriteReply* out) { return ParseReply(op, r, out); }
Status ParseFsReply(FsOp op, const FsReply& r, FsReadlinkReply* out) {
  return ParseReply(op, r, out);
}
Status ParseFsReply(FsOp op, const FsReply& r, FsStatfsReply* out) {
  return ParseReply(op, r, out);
}
Status ParseFsReply(FsOp op, const FsReply& r, FsXattrReply* out) { return ParseReply(op, r, out); }

}  // namespace mproxy::proto
