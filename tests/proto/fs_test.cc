// Typed file operations: every op's request and every reply shape through
// the wire and back, and damaged requests refused with the op and field named.
#include "proto/fs.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <limits>
#include <set>

#include "proto/codec.h"
#include "proto/frame.h"
#include "tests/fakes/sample_messages.h"

using namespace mproxy;
using namespace mproxy::proto;

namespace {

// Encodes `m` as a frame and decodes the payload again.
Message ThroughWire(const Message& m) {
  std::string frame;
  REQUIRE(EncodeFrame(m, &frame).ok());
  auto back = DecodeMessage(std::string_view(frame).substr(kFrameHeaderSize));
  REQUIRE(back.ok());
  return std::move(*back);
}

// The error ParseFsRequest gives for `op` with `fields`.
Error RequestError(uint32_t op, FsFields fields) {
  FsRequest r;
  r.id = 1;
  r.op = op;
  r.fields = std::move(fields);
  auto parsed = ParseFsRequest(r);
  REQUIRE_FALSE(parsed.ok());
  return parsed.error();
}

uint32_t Op(FsOp op) { return static_cast<uint32_t>(op); }

}  // namespace

TEST_CASE("every op's request survives the wire and parses back unchanged", "[proto][fs]") {
  std::set<uint32_t> ops;
  for (const FsOpRequest& req : testing::SampleFsRequests()) {
    INFO(FsOpName(static_cast<uint32_t>(OpOf(req))));
    Message m = ThroughWire(MakeFsRequest(77, req));
    const auto& wire = std::get<FsRequest>(m);
    CHECK(wire.id == 77);
    auto parsed = ParseFsRequest(wire);
    INFO((parsed.ok() ? std::string() : parsed.error().message()));
    REQUIRE(parsed.ok());
    CHECK(*parsed == req);
    ops.insert(wire.op);
  }
  CHECK(ops.size() == std::variant_size_v<FsOpRequest>);  // every op is covered
}

TEST_CASE("moving a request out of its fields gives the same result", "[proto][fs]") {
  FsOpRequest req = FsWriteRequest{3, 10, std::string(1000, 'w')};
  FsRequest wire = MakeFsRequest(1, req);
  auto parsed = ParseFsRequest(std::move(wire));
  REQUIRE(parsed.ok());
  CHECK(*parsed == req);
}

TEST_CASE("every reply shape survives the wire and parses back unchanged", "[proto][fs]") {
  // The op each reply shape answers (any op with that reply type will do).
  auto check = [](FsOp op, const FsOpReply& reply) {
    Message m = ThroughWire(MakeFsReply(5, reply));
    const auto& wire = std::get<FsReply>(m);
    CHECK(wire.id == 5);
    CHECK(wire.err == 0);
    std::visit(
        [&](const auto& expected) {
          using T = std::decay_t<decltype(expected)>;
          T back;
          auto s = ParseFsReply(op, wire, &back);
          INFO((s.ok() ? std::string() : s.error().message()));
          REQUIRE(s.ok());
          CHECK(back == expected);
        },
        reply);
  };
  std::set<size_t> shapes;
  for (const FsOpReply& reply : testing::SampleFsReplies()) {
    FsOp op = std::visit(
        [](const auto& r) {
          using T = std::decay_t<decltype(r)>;
          if constexpr (std::is_same_v<T, FsAttrReply>) return FsOp::kGetattr;
          if constexpr (std::is_same_v<T, FsOpenReply>) return FsOp::kOpen;
          if constexpr (std::is_same_v<T, FsOpendirReply>) return FsOp::kOpendir;
          if constexpr (std::is_same_v<T, FsReaddirReply>) return FsOp::kReaddir;
          if constexpr (std::is_same_v<T, FsReadReply>) return FsOp::kRead;
          if constexpr (std::is_same_v<T, FsWriteReply>) return FsOp::kWrite;
          if constexpr (std::is_same_v<T, FsReadlinkReply>) return FsOp::kReadlink;
          if constexpr (std::is_same_v<T, FsStatfsReply>) return FsOp::kStatfs;
          if constexpr (std::is_same_v<T, FsXattrReply>) return FsOp::kGetxattr;
          return FsOp::kUnlink;
        },
        reply);
    check(op, reply);
    shapes.insert(reply.index());
  }
  CHECK(shapes.size() == std::variant_size_v<FsOpReply>);
}

TEST_CASE("the typed reply helper follows the request's reply type", "[proto][fs]") {
  FsReply wire = MakeFsReply(9, FsOpenReply{12, FsAttr{34, 0100600}, "", false});
  auto open = ParseFsReplyFor<FsOpenRequest>(wire);
  REQUIRE(open.ok());
  CHECK(open->fh == 12);
  CHECK(open->attr.ino == 34);
  CHECK(open->attr.mode == 0100600);
}

TEST_CASE("a failed reply gives its errno, a reply missing attr is EIO", "[proto][fs]") {
  auto failed = ParseFsReplyFor<FsUnlinkRequest>(MakeFsError(1, ENOENT));
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().sys_errno() == ENOENT);
  CHECK_THAT(failed.error().message(), Catch::StartsWith("UNLINK: "));

  auto no_attr = ParseFsReplyFor<FsMkdirRequest>(MakeFsReply(1, FsEmptyReply{}));
  REQUIRE_FALSE(no_attr.ok());
  CHECK(no_attr.error().sys_errno() == EIO);
  CHECK(no_attr.error().message() == "MKDIR reply: missing attr");

  FsReply bad = MakeFsReply(1, FsWriteReply{3});
  bad.fields[1] = std::string("three");
  auto wrong = ParseFsReplyFor<FsWriteRequest>(bad);
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().sys_errno() == EIO);
  CHECK(wrong.error().message() ==
        "WRITE reply: field 'written': expected an unsigned integer, got a string");
}

TEST_CASE("non-negative signed values travel as unsigned integers", "[proto][fs]") {
  FsSetattrRequest sa;
  sa.path = "/f";
  sa.atime = 5;
  sa.mtime = -5;
  FsRequest wire = MakeFsRequest(1, sa);
  CHECK(std::holds_alternative<uint64_t>(wire.fields.at(7)));
  CHECK(std::holds_alternative<int64_t>(wire.fields.at(10)));
  // So the generic message round-trips exactly.
  CHECK(std::get<FsRequest>(ThroughWire(wire)) == wire);
  // Fields at their default are left out; required ones never are.
  FsRequest read = MakeFsRequest(2, FsReadRequest{0, 0, 0});
  CHECK(read.fields.size() == 3);
  FsRequest open = MakeFsRequest(3, FsOpenRequest{"/f", 0, 0});
  CHECK(open.fields.size() == 1);
}

TEST_CASE("a field of the wrong type names the op and the field", "[proto][fs]") {
  Error e =
      RequestError(Op(FsOp::kRead), {{1, std::string("7")}, {2, uint64_t{0}}, {3, uint64_t{1}}});
  CHECK(e.message() == "READ: field 'fh': expected an unsigned integer, got a string");
  CHECK(e.sys_errno() == EINVAL);

  e = RequestError(Op(FsOp::kOpen), {{1, uint64_t{5}}});
  CHECK(e.message() == "OPEN: field 'path': expected a string, got an unsigned integer");

  e = RequestError(Op(FsOp::kRead), {{1, int64_t{-1}}, {2, uint64_t{0}}, {3, uint64_t{1}}});
  CHECK(e.message() == "READ: field 'fh': expected an unsigned integer, got a negative integer");

  e = RequestError(Op(FsOp::kSetattr), {{1, std::string("/f")}, {7, std::string("yesterday")}});
  CHECK(e.message() == "SETATTR: field 'atime': expected an integer, got a string");

  e = RequestError(Op(FsOp::kFsync), {{1, uint64_t{1}}, {2, uint64_t{2}}});
  CHECK(e.message() == "FSYNC: field 'datasync': expected 0 or 1, got 2");

  e = RequestError(Op(FsOp::kMkdir), {{1, std::string("/d")}, {2, uint64_t{1} << 32}});
  CHECK(e.message() == "MKDIR: field 'mode': value 4294967296 out of range");
}

TEST_CASE("a missing required field is named with its op", "[proto][fs]") {
  Error e = RequestError(Op(FsOp::kOpen), {{2, uint64_t{0}}});
  CHECK(e.message() == "OPEN: missing required field 'path'");
  CHECK(e.sys_errno() == EINVAL);
  e = RequestError(Op(FsOp::kWrite), {{1, uint64_t{1}}, {2, uint64_t{0}}});
  CHECK(e.message() == "WRITE: missing required field 'data'");
}

TEST_CASE("an unknown op is ENOSYS", "[proto][fs]") {
  for (uint32_t op : {0u, 27u, 1000u, std::numeric_limits<uint32_t>::max()}) {
    Error e = RequestError(op, {});
    CHECK(e.sys_errno() == ENOSYS);
    CHECK(e.message() == "unknown op " + std::to_string(op));
    CHECK(FsOpName(op) == nullptr);
  }
  CHECK(std::string(FsOpName(1)) == "GETATTR");
  CHECK(std::string(FsOpName(25)) == "FALLOCATE");
}

TEST_CASE("unknown field keys are ignored", "[proto][fs]") {
  FsRequest r = MakeFsRequest(1, FsUnlinkRequest{"/x"});
  r.fields[99] = std::string("from a newer peer");
  r.fields[100] = int64_t{-3};
  auto parsed = ParseFsRequest(r);
  REQUIRE(parsed.ok());
  CHECK(std::get<FsUnlinkRequest>(*parsed).path == "/x");
}

TEST_CASE("paths must be absolute and free of NUL bytes, names not empty", "[proto][fs]") {
  CHECK(RequestError(Op(FsOp::kUnlink), {{1, std::string("relative")}}).message() ==
        "UNLINK: field 'path': is not an absolute path");
  CHECK(RequestError(Op(FsOp::kUnlink), {{1, std::string()}}).message() ==
        "UNLINK: field 'path': is empty");
  CHECK(RequestError(Op(FsOp::kUnlink), {{1, std::string("/a\0b", 4)}}).message() ==
        "UNLINK: field 'path': contains a NUL byte");
  CHECK(
      RequestError(Op(FsOp::kRename), {{1, std::string("/a")}, {2, std::string("b")}}).message() ==
      "RENAME: field 'new_path': is not an absolute path");
  CHECK(RequestError(Op(FsOp::kGetxattr), {{1, std::string("/a")}, {2, std::string()}}).message() ==
        "GETXATTR: field 'name': is empty");
  CHECK(RequestError(Op(FsOp::kSymlink), {{1, std::string("/l")}, {2, std::string("t\0", 2)}})
            .message() == "SYMLINK: field 'target': contains a NUL byte");
  // A relative symlink target is fine.
  FsRequest ok = MakeFsRequest(1, FsSymlinkRequest{"/l", "../t"});
  CHECK(ParseFsRequest(ok).ok());
}

TEST_CASE("sizes and offsets beyond the limits are refused", "[proto][fs]") {
  CHECK(RequestError(Op(FsOp::kRead),
                     {{1, uint64_t{1}}, {2, uint64_t{0}}, {3, uint64_t{kFsMaxIo + 1}}})
            .message() == "READ: field 'size': 524289 exceeds the maximum 524288");
  CHECK(RequestError(Op(FsOp::kRead), {{1, uint64_t{1}}, {2, uint64_t{1} << 63}, {3, uint64_t{1}}})
            .message() ==
        "READ: field 'offset': 9223372036854775808 exceeds the maximum "
        "9223372036854775807");
  CHECK(RequestError(Op(FsOp::kWrite),
                     {{1, uint64_t{1}}, {2, uint64_t{0}}, {3, std::string(kFsMaxIo + 1, 'x')}})
            .message() == "WRITE: field 'data': 524289 bytes exceed the maximum 524288");
  CHECK(RequestError(Op(FsOp::kWrite), {{1, uint64_t{1}},
                                        {2, uint64_t{std::numeric_limits<int64_t>::max()}},
                                        {3, std::string("x")}})
            .message() ==
        "WRITE: field 'offset': 9223372036854775807 exceeds the maximum "
        "9223372036854775806");
  CHECK(RequestError(Op(FsOp::kReaddir), {{1, uint64_t{1}}, {3, uint64_t{kFsMaxReaddirBytes + 1}}})
            .message() == "READDIR: field 'max_bytes': 524289 exceeds the maximum 524288");
  CHECK(RequestError(Op(FsOp::kSetattr), {{2, uint64_t{1}}, {6, uint64_t{1} << 63}}).message() ==
        "SETATTR: field 'size': 9223372036854775808 exceeds the maximum "
        "9223372036854775807");
  CHECK(RequestError(Op(FsOp::kFallocate),
                     {{1, uint64_t{1}}, {3, uint64_t{0}}, {4, uint64_t{1} << 63}})
            .message() ==
        "FALLOCATE: field 'length': 9223372036854775808 exceeds the maximum "
        "9223372036854775807");
}

TEST_CASE("unknown flag bits are refused in every flag field", "[proto][fs]") {
  CHECK(RequestError(Op(FsOp::kOpen), {{1, std::string("/f")}, {2, uint64_t{1} << 11}}).message() ==
        "OPEN: field 'flags': unknown bits 0x800");
  CHECK(RequestError(Op(FsOp::kOpen), {{1, std::string("/f")}, {2, uint64_t{3}}}).message() ==
        "OPEN: field 'flags': access mode 3 is none of 0 (read), 1 (write), 2 (both)");
  CHECK(RequestError(Op(FsOp::kOpen), {{1, std::string("/f")}, {3, uint64_t{0200644}}}).message() ==
        "OPEN: field 'mode': 0200644 has bits beyond 07777 and the file type");
  // File type bits, as FUSE passes them along, are accepted.
  CHECK(ParseFsRequest(MakeFsRequest(1, FsOpenRequest{"/f", FsOpenFlag::kCreat, 0100644})).ok());
  CHECK(ParseFsRequest(MakeFsRequest(1, FsMkdirRequest{"/d", 040755})).ok());
  CHECK(RequestError(Op(FsOp::kRename),
                     {{1, std::string("/a")}, {2, std::string("/b")}, {3, uint64_t{4}}})
            .message() == "RENAME: field 'flags': unknown bits 0x4");
  CHECK(RequestError(Op(FsOp::kRename),
                     {{1, std::string("/a")}, {2, std::string("/b")}, {3, uint64_t{3}}})
            .message() == "RENAME: field 'flags': NOREPLACE and EXCHANGE exclude each other");
  CHECK(RequestError(Op(FsOp::kSetxattr),
                     {{1, std::string("/a")}, {2, std::string("user.x")}, {4, uint64_t{4}}})
            .message() == "SETXATTR: field 'flags': unknown bits 0x4");
  CHECK(RequestError(Op(FsOp::kFallocate),
                     {{1, uint64_t{1}}, {2, uint64_t{8}}, {3, uint64_t{0}}, {4, uint64_t{1}}})
            .message() == "FALLOCATE: field 'mode': unknown bits 0x8");
  CHECK(RequestError(Op(FsOp::kAccess), {{1, std::string("/a")}, {2, uint64_t{8}}}).message() ==
        "ACCESS: field 'mask': unknown bits 0x8");
  CHECK(RequestError(Op(FsOp::kMknod), {{1, std::string("/a")}, {2, uint64_t{040755}}}).message() ==
        "MKNOD: field 'mode': 040755 is no regular file, FIFO, socket or device");
}

TEST_CASE("path-or-handle ops need exactly one of them", "[proto][fs]") {
  CHECK(RequestError(Op(FsOp::kGetattr), {}).message() ==
        "GETATTR: exactly one of 'path' and 'fh' is needed");
  CHECK(RequestError(Op(FsOp::kGetattr), {{1, std::string("/a")}, {2, uint64_t{1}}}).message() ==
        "GETATTR: exactly one of 'path' and 'fh' is needed");
  CHECK(RequestError(Op(FsOp::kSetattr), {{3, uint64_t{0644}}}).message() ==
        "SETATTR: exactly one of 'path' and 'fh' is needed");
}

TEST_CASE("SETATTR times are a value or now, with valid nanoseconds", "[proto][fs]") {
  CHECK(
      RequestError(Op(FsOp::kSetattr), {{1, std::string("/a")}, {7, uint64_t{1}}, {9, uint64_t{1}}})
          .message() == "SETATTR: field 'atime' and 'atime_now' exclude each other");
  CHECK(RequestError(Op(FsOp::kSetattr),
                     {{1, std::string("/a")}, {10, uint64_t{1}}, {11, uint64_t{1000000000}}})
            .message() == "SETATTR: field 'mtime_nsec': 1000000000 exceeds the maximum 999999999");
  CHECK(RequestError(Op(FsOp::kSetattr), {{1, std::string("/a")}, {11, uint64_t{5}}}).message() ==
        "SETATTR: field 'mtime_nsec' without 'mtime'");
}

TEST_CASE("flag bits convert to this host's values and back", "[proto][fs]") {
  CHECK(OpenFlagsToHost(FsOpenFlag::kRdonly) == O_RDONLY);
  CHECK(OpenFlagsToHost(FsOpenFlag::kWronly | FsOpenFlag::kCreat | FsOpenFlag::kExcl) ==
        (O_WRONLY | O_CREAT | O_EXCL));
  CHECK(OpenFlagsToHost(FsOpenFlag::kRdwr | FsOpenFlag::kTrunc | FsOpenFlag::kAppend) ==
        (O_RDWR | O_TRUNC | O_APPEND));
  CHECK(OpenFlagsToHost(FsOpenFlag::kNofollow | FsOpenFlag::kDirectory | FsOpenFlag::kNoatime) ==
        (O_NOFOLLOW | O_DIRECTORY | O_NOATIME));
  CHECK(OpenFlagsToHost(FsOpenFlag::kDsync) == O_DSYNC);
  CHECK(OpenFlagsToHost(FsOpenFlag::kSync) == O_SYNC);
  for (uint32_t bit = 1u << 2; bit <= FsOpenFlag::kAll; bit <<= 1) {
    for (uint32_t mode : {FsOpenFlag::kRdonly, FsOpenFlag::kWronly, FsOpenFlag::kRdwr}) {
      INFO("bit " << bit << " mode " << mode);
      CHECK(OpenFlagsFromHost(OpenFlagsToHost(bit | mode)) == (bit | mode));
    }
  }
  // Host bits the wire does not carry are dropped.
  CHECK(OpenFlagsFromHost(O_RDONLY | O_CLOEXEC | O_NONBLOCK) == FsOpenFlag::kRdonly);

  CHECK(RenameFlagsToHost(FsRenameFlag::kNoreplace) == RENAME_NOREPLACE);
  CHECK(RenameFlagsToHost(FsRenameFlag::kExchange) == RENAME_EXCHANGE);
  CHECK(RenameFlagsFromHost(RENAME_EXCHANGE) == FsRenameFlag::kExchange);
  CHECK(XattrFlagsToHost(FsXattrFlag::kCreate) == XATTR_CREATE);
  CHECK(XattrFlagsToHost(FsXattrFlag::kReplace) == XATTR_REPLACE);
  CHECK(XattrFlagsFromHost(XATTR_CREATE | XATTR_REPLACE) ==
        (FsXattrFlag::kCreate | FsXattrFlag::kReplace));
  for (uint32_t m = 0; m < 8; ++m) CHECK(FallocateModeFromHost(FallocateModeToHost(m)) == m);
  CHECK(FallocateModeToHost(FsFallocateFlag::kKeepSize | FsFallocateFlag::kPunchHole) ==
        (FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE));
  CHECK(FallocateModeToHost(FsFallocateFlag::kZeroRange) == FALLOC_FL_ZERO_RANGE);
  CHECK(AccessMaskToHost(FsAccessFlag::kExists) == F_OK);
  CHECK(AccessMaskToHost(FsAccessFlag::kRead | FsAccessFlag::kWrite | FsAccessFlag::kExecute) ==
        (R_OK | W_OK | X_OK));
  for (uint32_t m = 0; m < 8; ++m) CHECK(AccessMaskFromHost(AccessMaskToHost(m)) == m);
}

TEST_CASE("a directory entry never encodes larger than its bound", "[proto][fs]") {
  // Largest values everywhere, and a name of the longest Linux allows.
  FsAttr big;
  big.ino = big.size = big.blocks = big.rdev = std::numeric_limits<uint64_t>::max();
  big.mode = big.nlink = big.uid = big.gid = big.blksize = std::numeric_limits<uint32_t>::max();
  big.atime = big.mtime = big.ctime = std::numeric_limits<int64_t>::min();
  big.atime_nsec = big.mtime_nsec = big.ctime_nsec = std::numeric_limits<uint32_t>::max();
  FsDirEntry e{std::string(255, 'n'), std::numeric_limits<uint64_t>::max(),
               std::numeric_limits<uint64_t>::max(), std::numeric_limits<uint32_t>::max(), big};
  FsReaddirReply none;
  FsReaddirReply one;
  one.entries.push_back(e);
  std::string a, b;
  REQUIRE(EncodeFrame(MakeFsReply(1, none), &a).ok());
  REQUIRE(EncodeFrame(MakeFsReply(1, one), &b).ok());
  CHECK(b.size() - a.size() <= FsDirEntryMaxEncodedSize(255));
  // And a full default page, with the worst-case names, fits a frame.
  size_t per_page = kFsMaxReaddirBytes / FsDirEntryMaxEncodedSize(255) + 1;
  FsReaddirReply page;
  page.entries.assign(per_page, e);
  std::string frame;
  CHECK(EncodeFrame(MakeFsReply(1, page), &frame).ok());
}

TEST_CASE("the largest READ reply and WRITE request fit in a frame", "[proto][fs]") {
  std::string frame;
  CHECK(EncodeFrame(MakeFsReply(~0ULL, FsReadReply{std::string(kFsMaxIo, 'r')}), &frame).ok());
  CHECK(EncodeFrame(MakeFsRequest(~0ULL, FsWriteRequest{~0ULL >> 1, 0, std::string(kFsMaxIo, 'w')}),
                    &frame)
            .ok());
}
