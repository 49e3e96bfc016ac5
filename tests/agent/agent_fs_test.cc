// File operations served by the real mproxy-agent, in a temporary directory:
// every op, its flags and its errors, paging, many requests in flight,
// garbage requests, and handles closed at session end.
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "common/io.h"
#include "proto/fs.h"
#include "tests/agent/agent_client.h"

namespace mproxy::testing {
namespace {

using namespace proto;

std::string ReadLocal(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(fd);
  auto data = ReadToEof(fd.get());
  REQUIRE(data.ok());
  return *data;
}

void WriteLocal(const std::string& path, const std::string& data, mode_t mode = 0644) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  REQUIRE(fd);
  REQUIRE(WriteAll(fd.get(), data).ok());
}

struct stat LstatLocal(const std::string& path) {
  struct stat st {};
  REQUIRE(lstat(path.c_str(), &st) == 0);
  return st;
}

// Byte i of the test pattern.
char PatternAt(uint64_t i) { return static_cast<char>((i * 7 + i / 251) & 0xff); }

std::string Pattern(uint64_t offset, size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = PatternAt(offset + i);
  return s;
}

// An agent and a temporary directory to work in.
class FsTest {
 public:
  FsTest() {
    char tmpl[] = "/tmp/mproxy-fs-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    auto s = agent.Start();
    INFO((s ? std::string() : s.error().message()));
    REQUIRE(s.ok());
  }
  ~FsTest() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  FsTest(const FsTest&) = delete;
  FsTest& operator=(const FsTest&) = delete;

  std::string Path(const std::string& name) const { return dir + "/" + name; }

  template <class Req>
  Result<typename Req::Reply> Call(const Req& req) {
    auto reply = agent.FsCall(MakeFsRequest(next_id++, req));
    REQUIRE(reply.has_value());
    return ParseFsReplyFor<Req>(*reply);
  }

  // The errno the op fails with, 0 when it succeeds.
  template <class Req>
  int Errno(const Req& req) {
    auto r = Call(req);
    return r.ok() ? 0 : r.error().sys_errno();
  }

  template <class Req>
  typename Req::Reply Ok(const Req& req) {
    auto r = Call(req);
    INFO(FsOpName(static_cast<uint32_t>(Req::kOp))
         << " failed: " << (r.ok() ? std::string() : r.error().message()));
    REQUIRE(r.ok());
    return std::move(r).value();
  }

  uint64_t Open(const std::string& path, uint32_t flags, uint32_t mode = 0644) {
    return Ok(FsOpenRequest{path, flags, mode}).fh;
  }

  // Sends requests without waiting; Await collects the replies.
  uint64_t Post(const FsOpRequest& req) {
    uint64_t id = next_id++;
    agent.Send(MakeFsRequest(id, req));
    return id;
  }
  // Runs until `n` replies are collected, then takes them all by id.
  std::map<uint64_t, FsReply> Await(size_t n) {
    bool done = agent.RunUntil([&] { return agent.fs_replies.size() >= n; }, 60000);
    INFO(agent.fs_replies.size() << " of " << n << " replies; agent stderr:\n"
                                 << agent.agent_stderr);
    REQUIRE(done);
    std::map<uint64_t, FsReply> by_id;
    for (FsReply& r : agent.fs_replies) {
      uint64_t id = r.id;
      CHECK(by_id.emplace(id, std::move(r)).second);  // one reply per request
    }
    agent.fs_replies.clear();
    return by_id;
  }

  std::string dir;
  AgentClient agent;
  uint64_t next_id = 1;
};

#define FS_TEST(name) TEST_CASE_METHOD(FsTest, name, "[agent][fs]")

FS_TEST("GETATTR of a path and of a handle match lstat and fstat") {
  WriteLocal(Path("f"), "twelve bytes", 0640);
  struct stat st = LstatLocal(Path("f"));
  FsAttr a = Ok(FsGetattrRequest{Path("f"), std::nullopt}).attr;
  CHECK(a.ino == st.st_ino);
  CHECK(a.mode == st.st_mode);
  CHECK(a.mode == (S_IFREG | 0640));
  CHECK(a.nlink == 1);
  CHECK(a.uid == st.st_uid);
  CHECK(a.gid == st.st_gid);
  CHECK(a.size == 12);
  CHECK(a.blocks == static_cast<uint64_t>(st.st_blocks));
  CHECK(a.blksize == static_cast<uint32_t>(st.st_blksize));
  CHECK(a.mtime == st.st_mtim.tv_sec);
  CHECK(a.mtime_nsec == st.st_mtim.tv_nsec);
  CHECK(a.ctime == st.st_ctim.tv_sec);
  CHECK(a.atime == st.st_atim.tv_sec);

  uint64_t fh = Open(Path("f"), FsOpenFlag::kRdonly);
  CHECK(Ok(FsGetattrRequest{std::nullopt, fh}).attr == a);

  CHECK(Ok(FsGetattrRequest{dir, std::nullopt}).attr.mode == (LstatLocal(dir).st_mode));
  CHECK(Errno(FsGetattrRequest{Path("missing"), std::nullopt}) == ENOENT);
  CHECK(Errno(FsGetattrRequest{Path("f/below"), std::nullopt}) == ENOTDIR);
  CHECK(Errno(FsGetattrRequest{std::nullopt, fh + 1000}) == EBADF);
}

FS_TEST("OPEN with CREAT creates, EXCL on an existing file is EEXIST") {
  FsOpenReply created = Ok(FsOpenRequest{
      Path("new"), FsOpenFlag::kWronly | FsOpenFlag::kCreat | FsOpenFlag::kExcl, S_IFREG | 0640});
  CHECK(created.fh != 0);
  CHECK(created.attr.mode == (S_IFREG | 0640));
  CHECK(created.attr.size == 0);
  CHECK(created.attr.ino == LstatLocal(Path("new")).st_ino);
  CHECK(Errno(FsOpenRequest{Path("new"),
                            FsOpenFlag::kWronly | FsOpenFlag::kCreat | FsOpenFlag::kExcl, 0640}) ==
        EEXIST);
  // CREAT alone opens the existing file and leaves its mode alone.
  FsOpenReply again = Ok(FsOpenRequest{Path("new"), FsOpenFlag::kRdwr | FsOpenFlag::kCreat, 0666});
  CHECK(again.attr.ino == created.attr.ino);
  CHECK(again.attr.mode == (S_IFREG | 0640));
  CHECK(again.fh != created.fh);
  // Without CREAT a missing file stays missing.
  CHECK(Errno(FsOpenRequest{Path("absent"), FsOpenFlag::kRdonly, 0}) == ENOENT);
  CHECK(Errno(FsOpenRequest{Path("absent/x"), FsOpenFlag::kCreat, 0644}) == ENOENT);
  CHECK(Errno(FsOpenRequest{dir, FsOpenFlag::kWronly, 0}) == EISDIR);
  // DIRECTORY on a file, NOFOLLOW on a symlink.
  CHECK(Errno(FsOpenRequest{Path("new"), FsOpenFlag::kDirectory, 0}) == ENOTDIR);
  REQUIRE(symlink("new", Path("link").c_str()) == 0);
  CHECK(Errno(FsOpenRequest{Path("link"), FsOpenFlag::kNofollow, 0}) == ELOOP);
  CHECK(Open(Path("link"), FsOpenFlag::kRdonly) != 0);
  // The sync flags are accepted.
  CHECK(Open(Path("new"), FsOpenFlag::kWronly | FsOpenFlag::kSync) != 0);
  CHECK(Open(Path("new"), FsOpenFlag::kWronly | FsOpenFlag::kDsync) != 0);

  // read_ahead: the first bytes come with the open, for reading opens of
  // regular files only.
  WriteLocal(Path("text"), "0123456789");
  FsOpenReply head = Ok(FsOpenRequest{Path("text"), FsOpenFlag::kRdonly, 0, 4});
  CHECK(head.read_ahead_done);
  CHECK(head.data == "0123");
  FsOpenReply whole = Ok(FsOpenRequest{Path("text"), FsOpenFlag::kRdwr, 0, 100});
  CHECK(whole.read_ahead_done);
  CHECK(whole.data == "0123456789");
  FsOpenReply writing = Ok(FsOpenRequest{Path("text"), FsOpenFlag::kWronly, 0, 100});
  CHECK_FALSE(writing.read_ahead_done);
  CHECK(writing.data.empty());
  CHECK(Errno(FsOpenRequest{Path("text"), FsOpenFlag::kRdonly, 0, kFsMaxIo + 1}) == EINVAL);
}

TEST_CASE("modes are applied exactly, whatever the agent's umask", "[agent][fs]") {
  char tmpl[] = "/tmp/mproxy-fs-umask-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  std::string dir = tmpl;
  mode_t old = umask(077);  // the agent inherits it
  AgentClient agent;
  auto started = agent.Start();
  umask(old);
  REQUIRE(started.ok());
  uint64_t id = 1;
  auto call = [&](const FsOpRequest& req) {
    auto reply = agent.FsCall(MakeFsRequest(id++, req));
    REQUIRE(reply.has_value());
    REQUIRE(reply->err == 0);
    return *reply;
  };
  call(FsOpenRequest{dir + "/excl", FsOpenFlag::kWronly | FsOpenFlag::kCreat | FsOpenFlag::kExcl,
                     0644});
  CHECK((LstatLocal(dir + "/excl").st_mode & 07777) == 0644);
  FsReply created =
      call(FsOpenRequest{dir + "/creat", FsOpenFlag::kWronly | FsOpenFlag::kCreat, 0664});
  REQUIRE(created.attr);
  CHECK(created.attr->mode == (S_IFREG | 0664));
  CHECK((LstatLocal(dir + "/creat").st_mode & 07777) == 0664);
  WriteLocal(dir + "/existing", "", 0600);
  REQUIRE(chmod((dir + "/existing").c_str(), 0600) == 0);
  call(FsOpenRequest{dir + "/existing", FsOpenFlag::kWronly | FsOpenFlag::kCreat, 0666});
  CHECK((LstatLocal(dir + "/existing").st_mode & 07777) == 0600);  // not created: untouched
  FsReply mkdir_reply = call(FsMkdirRequest{dir + "/d", 0755});
  CHECK(mkdir_reply.attr->mode == (S_IFDIR | 0755));
  CHECK((LstatLocal(dir + "/d").st_mode & 07777) == 0755);
  call(FsMknodRequest{dir + "/fifo", S_IFIFO | 0644, 0});
  CHECK(LstatLocal(dir + "/fifo").st_mode == (S_IFIFO | 0644));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

FS_TEST("TRUNC empties a file and APPEND writes at its end") {
  WriteLocal(Path("f"), "hello world");
  FsOpenReply t = Ok(FsOpenRequest{Path("f"), FsOpenFlag::kWronly | FsOpenFlag::kTrunc, 0});
  CHECK(t.attr.size == 0);
  CHECK(ReadLocal(Path("f")).empty());
  CHECK(Ok(FsWriteRequest{t.fh, 0, "abc"}).written == 3);
  Ok(FsReleaseRequest{t.fh});
  uint64_t a = Open(Path("f"), FsOpenFlag::kWronly | FsOpenFlag::kAppend);
  CHECK(Ok(FsWriteRequest{a, 0, "def"}).written == 3);  // offset ignored
  CHECK(Ok(FsWriteRequest{a, 1, "gh"}).written == 2);
  CHECK(ReadLocal(Path("f")) == "abcdefgh");
  // A read-only handle cannot write.
  uint64_t r = Open(Path("f"), FsOpenFlag::kRdonly);
  CHECK(Errno(FsWriteRequest{r, 0, "x"}) == EBADF);
}

FS_TEST("writes at offsets and sparse writes read back; reads at the end are short") {
  uint64_t fh = Open(Path("sparse"), FsOpenFlag::kRdwr | FsOpenFlag::kCreat, 0644);
  const uint64_t far = 8 << 20;
  CHECK(Ok(FsWriteRequest{fh, 0, "head"}).written == 4);
  CHECK(Ok(FsWriteRequest{fh, far, "tail"}).written == 4);
  CHECK(Ok(FsWriteRequest{fh, 2, "AD"}).written == 2);
  FsAttr a = Ok(FsGetattrRequest{std::nullopt, fh}).attr;
  CHECK(a.size == far + 4);
  CHECK(a.blocks * 512 < far);  // the hole takes no space
  CHECK(Ok(FsReadRequest{fh, 0, 8}).data == std::string("heAD\0\0\0\0", 8));
  CHECK(Ok(FsReadRequest{fh, far - 2, 100}).data == std::string("\0\0tail", 6));
  CHECK(Ok(FsReadRequest{fh, far + 4, 100}).data.empty());
  CHECK(Ok(FsReadRequest{fh, far + 1000, 100}).data.empty());
  CHECK(Ok(FsReadRequest{fh, 0, 0}).data.empty());
  // A full-size read of pattern data.
  std::string big = Pattern(0, kFsMaxIo);
  CHECK(Ok(FsWriteRequest{fh, 4096, big}).written == big.size());
  CHECK(Ok(FsReadRequest{fh, 4096, kFsMaxIo}).data == big);
  Ok(FsFsyncRequest{fh, false});
  Ok(FsFsyncRequest{fh, true});
  Ok(FsReleaseRequest{fh});
  CHECK(Errno(FsReadRequest{fh, 0, 1}) == EBADF);
  CHECK(Errno(FsReleaseRequest{fh}) == EBADF);
}

FS_TEST("an ordered WRITE runs before every request sent after it") {
  uint64_t fh = Open(Path("log"), FsOpenFlag::kRdwr | FsOpenFlag::kCreat, 0644);
  // Sent without waiting, as write-behind does: each READ (on the pool) and
  // GETATTR must find every write sent before it done.
  std::vector<uint64_t> reads, stats;
  std::string expected;
  for (int k = 0; k < 100; ++k) {
    std::string line = "line " + std::to_string(1000 + k) + "\n";
    Post(FsWriteRequest{fh, expected.size(), line, true});
    expected += line;
    reads.push_back(Post(FsReadRequest{fh, 0, 4096}));
    stats.push_back(Post(FsGetattrRequest{Path("log"), std::nullopt}));
  }
  auto replies = Await(300);
  size_t length = 0;
  for (size_t k = 0; k < reads.size(); ++k) {
    length += 10;
    auto read = ParseFsReplyFor<FsReadRequest>(replies[reads[k]]);
    REQUIRE(read.ok());
    // At least the writes before it (later ones may have run meanwhile).
    CHECK(read->data.size() >= length);
    CHECK(expected.starts_with(read->data));
    auto stat = ParseFsReplyFor<FsGetattrRequest>(replies[stats[k]]);
    REQUIRE(stat.ok());
    CHECK(stat->attr.size >= length);
  }
  for (auto& [id, reply] : replies) CHECK(reply.err == 0);
  Ok(FsReleaseRequest{fh});
}

FS_TEST("MKDIR and RMDIR, with ENOTEMPTY and EEXIST") {
  FsAttr a = Ok(FsMkdirRequest{Path("d"), 0750}).attr;
  CHECK(a.mode == (S_IFDIR | 0750));
  CHECK(a.ino == LstatLocal(Path("d")).st_ino);
  CHECK(Errno(FsMkdirRequest{Path("d"), 0755}) == EEXIST);
  Ok(FsMkdirRequest{Path("d/sub"), 0755});
  CHECK(Errno(FsRmdirRequest{Path("d")}) == ENOTEMPTY);
  Ok(FsRmdirRequest{Path("d/sub")});
  Ok(FsRmdirRequest{Path("d")});
  CHECK(Errno(FsRmdirRequest{Path("d")}) == ENOENT);
  WriteLocal(Path("file"), "");
  CHECK(Errno(FsRmdirRequest{Path("file")}) == ENOTDIR);
}

FS_TEST("UNLINK removes a file; a missing one is ENOENT, a directory EISDIR") {
  WriteLocal(Path("f"), "x");
  Ok(FsUnlinkRequest{Path("f")});
  CHECK(access(Path("f").c_str(), F_OK) != 0);
  CHECK(Errno(FsUnlinkRequest{Path("f")}) == ENOENT);
  Ok(FsMkdirRequest{Path("d"), 0755});
  CHECK(Errno(FsUnlinkRequest{Path("d")}) == EISDIR);
}

FS_TEST("RENAME plain, NOREPLACE refuses an existing target, EXCHANGE swaps") {
  WriteLocal(Path("a"), "A");
  WriteLocal(Path("b"), "B");
  Ok(FsRenameRequest{Path("a"), Path("c"), 0});
  CHECK(ReadLocal(Path("c")) == "A");
  CHECK(access(Path("a").c_str(), F_OK) != 0);
  CHECK(Errno(FsRenameRequest{Path("c"), Path("b"), FsRenameFlag::kNoreplace}) == EEXIST);
  Ok(FsRenameRequest{Path("c"), Path("d"), FsRenameFlag::kNoreplace});
  int exchange = Errno(FsRenameRequest{Path("d"), Path("b"), FsRenameFlag::kExchange});
  if (exchange == EINVAL || exchange == ENOSYS) {
    WARN("RENAME_EXCHANGE unsupported on " << dir << "; not checked");
  } else {
    CHECK(exchange == 0);
    CHECK(ReadLocal(Path("d")) == "B");
    CHECK(ReadLocal(Path("b")) == "A");
  }
  CHECK(Errno(FsRenameRequest{Path("missing"), Path("x"), 0}) == ENOENT);
  Ok(FsMkdirRequest{Path("dir"), 0755});
  WriteLocal(Path("dir/inside"), "");
  CHECK(Errno(FsRenameRequest{Path("b"), Path("dir"), 0}) == EISDIR);
}

FS_TEST("SYMLINK and READLINK, LINK makes nlink 2") {
  FsAttr l = Ok(FsSymlinkRequest{Path("l"), "../some/where"}).attr;
  CHECK(S_ISLNK(l.mode));
  CHECK(l.size == std::string("../some/where").size());
  CHECK(Ok(FsReadlinkRequest{Path("l")}).target == "../some/where");
  FsAttr again = Ok(FsGetattrRequest{Path("l"), std::nullopt}).attr;  // lstat, not stat
  CHECK(again.ino == l.ino);
  CHECK(again.mode == l.mode);
  CHECK(again.size == l.size);
  CHECK(Errno(FsSymlinkRequest{Path("l"), "x"}) == EEXIST);
  WriteLocal(Path("f"), "data");
  CHECK(Errno(FsReadlinkRequest{Path("f")}) == EINVAL);
  CHECK(Errno(FsReadlinkRequest{Path("none")}) == ENOENT);
  std::string long_target(4000, 't');
  Ok(FsSymlinkRequest{Path("long"), long_target});
  CHECK(Ok(FsReadlinkRequest{Path("long")}).target == long_target);

  FsAttr h = Ok(FsLinkRequest{Path("f"), Path("hard")}).attr;
  CHECK(h.nlink == 2);
  CHECK(h.ino == LstatLocal(Path("f")).st_ino);
  CHECK(Ok(FsGetattrRequest{Path("f"), std::nullopt}).attr.nlink == 2);
  CHECK(ReadLocal(Path("hard")) == "data");
  CHECK(Errno(FsLinkRequest{Path("f"), Path("hard")}) == EEXIST);
  CHECK(Errno(FsLinkRequest{Path("none"), Path("x")}) == ENOENT);
}

FS_TEST("SETATTR changes mode, owner, size and times by path and by handle") {
  WriteLocal(Path("f"), "0123456789");
  FsSetattrRequest chmod_req;
  chmod_req.path = Path("f");
  chmod_req.mode = 0604;
  CHECK(Ok(chmod_req).attr.mode == (S_IFREG | 0604));
  CHECK(LstatLocal(Path("f")).st_mode == (S_IFREG | 0604));

  FsSetattrRequest chown_req;
  chown_req.path = Path("f");
  chown_req.uid = getuid();
  chown_req.gid = getgid();
  FsAttr owned = Ok(chown_req).attr;
  CHECK(owned.uid == getuid());
  CHECK(owned.gid == getgid());

  FsSetattrRequest trunc_req;
  trunc_req.path = Path("f");
  trunc_req.size = 4;
  CHECK(Ok(trunc_req).attr.size == 4);
  CHECK(ReadLocal(Path("f")) == "0123");

  FsSetattrRequest times;
  times.path = Path("f");
  times.atime = 1000000000;
  times.atime_nsec = 5;
  times.mtime = -100;  // before the epoch
  times.mtime_nsec = 7;
  FsAttr t = Ok(times).attr;
  struct stat st = LstatLocal(Path("f"));
  CHECK(st.st_atim.tv_sec == 1000000000);
  CHECK(st.st_atim.tv_nsec == 5);
  CHECK(st.st_mtim.tv_sec == -100);
  CHECK(st.st_mtim.tv_nsec == 7);
  CHECK(t.atime == 1000000000);
  CHECK(t.mtime == -100);
  CHECK(t.mtime_nsec == 7);

  // By handle: grow, chmod and "now" for mtime only.
  uint64_t fh = Open(Path("f"), FsOpenFlag::kRdwr);
  FsSetattrRequest by_fh;
  by_fh.fh = fh;
  by_fh.size = 1 << 20;
  by_fh.mode = S_IFREG | 0600;  // type bits, as FUSE passes them, are ignored
  by_fh.mtime_now = true;
  FsAttr g = Ok(by_fh).attr;
  CHECK(g.size == 1 << 20);
  CHECK(g.mode == (S_IFREG | 0600));
  CHECK(g.atime == 1000000000);  // untouched
  CHECK(std::abs(g.mtime - static_cast<int64_t>(time(nullptr))) < 60);

  // Owner and times of a symlink itself, not its target.
  REQUIRE(symlink("f", Path("l").c_str()) == 0);
  FsSetattrRequest link_times;
  link_times.path = Path("l");
  link_times.mtime = 12345;
  CHECK(S_ISLNK(Ok(link_times).attr.mode));
  CHECK(LstatLocal(Path("l")).st_mtim.tv_sec == 12345);
  CHECK(LstatLocal(Path("f")).st_mtim.tv_sec != 12345);

  FsSetattrRequest missing;
  missing.path = Path("missing");
  missing.mode = 0644;
  CHECK(Errno(missing) == ENOENT);
  FsSetattrRequest bad_fh;
  bad_fh.fh = 999999;
  bad_fh.size = 0;
  CHECK(Errno(bad_fh) == EBADF);
}

FS_TEST("STATFS gives the numbers statvfs gives") {
  FsStatfsReply s = Ok(FsStatfsRequest{dir});
  struct statvfs sv {};
  REQUIRE(statvfs(dir.c_str(), &sv) == 0);
  CHECK(s.bsize == sv.f_bsize);
  CHECK(s.frsize == sv.f_frsize);
  CHECK(s.blocks == sv.f_blocks);
  CHECK(s.files == sv.f_files);
  CHECK(s.fsid == sv.f_fsid);
  CHECK(s.flag == sv.f_flag);
  CHECK(s.namemax == sv.f_namemax);
  // Free counts move with whatever else writes to the disk meanwhile.
  auto near = [](uint64_t a, uint64_t b) { return (a > b ? a - b : b - a) <= 1 + b / 100; };
  CHECK(near(s.bfree, sv.f_bfree));
  CHECK(near(s.bavail, sv.f_bavail));
  CHECK(near(s.ffree, sv.f_ffree));
  CHECK(near(s.favail, sv.f_favail));
  CHECK(Errno(FsStatfsRequest{Path("missing")}) == ENOENT);
}

FS_TEST("ACCESS checks the caller's mask") {
  WriteLocal(Path("f"), "", 0644);
  REQUIRE(chmod(Path("f").c_str(), 0644) == 0);
  CHECK(Errno(FsAccessRequest{Path("f"), FsAccessFlag::kExists}) == 0);
  CHECK(Errno(FsAccessRequest{Path("f"), FsAccessFlag::kRead | FsAccessFlag::kWrite}) == 0);
  // No execute bit anywhere: refused even to root.
  CHECK(Errno(FsAccessRequest{Path("f"), FsAccessFlag::kExecute}) == EACCES);
  CHECK(Errno(FsAccessRequest{Path("missing"), FsAccessFlag::kExists}) == ENOENT);
  WriteLocal(Path("none"), "", 0);
  REQUIRE(chmod(Path("none").c_str(), 0) == 0);
  if (geteuid() == 0) {
    WARN("running as root: a 000 file is readable, its EACCES is not checked");
  } else {
    CHECK(Errno(FsAccessRequest{Path("none"), FsAccessFlag::kRead}) == EACCES);
  }
}

FS_TEST("extended attributes: set, get, size query, list, remove, ENODATA") {
  WriteLocal(Path("f"), "");
  int set = Errno(FsSetxattrRequest{Path("f"), "user.mproxy", "value", 0});
  if (set == EOPNOTSUPP || set == ENOTSUP) {
    WARN("SKIPPED: " << dir << " has no user xattrs");
    return;
  }
  REQUIRE(set == 0);
  char local[16] = {};
  CHECK(getxattr(Path("f").c_str(), "user.mproxy", local, sizeof local) == 5);
  CHECK(std::string(local) == "value");

  FsXattrReply size = Ok(FsGetxattrRequest{Path("f"), "user.mproxy", 0});
  CHECK(size.size == 5);
  CHECK(size.data.empty());
  FsXattrReply value = Ok(FsGetxattrRequest{Path("f"), "user.mproxy", 64});
  CHECK(value.data == "value");
  CHECK(value.size == 5);
  CHECK(Errno(FsGetxattrRequest{Path("f"), "user.mproxy", 2}) == ERANGE);
  CHECK(Errno(FsGetxattrRequest{Path("f"), "user.missing", 64}) == ENODATA);
  // A binary value with NUL bytes.
  std::string binary("\0\1\2\377", 4);
  Ok(FsSetxattrRequest{Path("f"), "user.bin", binary, 0});
  CHECK(Ok(FsGetxattrRequest{Path("f"), "user.bin", 100000}).data == binary);

  FsXattrReply list_size = Ok(FsListxattrRequest{Path("f"), 0});
  FsXattrReply list = Ok(FsListxattrRequest{Path("f"), static_cast<uint32_t>(list_size.size)});
  CHECK(list.size == list_size.size);
  std::set<std::string> names;
  for (size_t start = 0; start < list.data.size();) {
    size_t end = list.data.find('\0', start);
    REQUIRE(end != std::string::npos);
    names.insert(list.data.substr(start, end - start));
    start = end + 1;
  }
  CHECK(names.count("user.mproxy") == 1);
  CHECK(names.count("user.bin") == 1);

  CHECK(Errno(FsSetxattrRequest{Path("f"), "user.mproxy", "x", FsXattrFlag::kCreate}) == EEXIST);
  CHECK(Errno(FsSetxattrRequest{Path("f"), "user.new", "x", FsXattrFlag::kReplace}) == ENODATA);
  Ok(FsSetxattrRequest{Path("f"), "user.mproxy", "other", FsXattrFlag::kReplace});
  CHECK(Ok(FsGetxattrRequest{Path("f"), "user.mproxy", 64}).data == "other");
  Ok(FsRemovexattrRequest{Path("f"), "user.mproxy"});
  CHECK(Errno(FsRemovexattrRequest{Path("f"), "user.mproxy"}) == ENODATA);
  CHECK(Errno(FsGetxattrRequest{Path("f"), "user.mproxy", 0}) == ENODATA);
  CHECK(Errno(FsGetxattrRequest{Path("missing"), "user.mproxy", 0}) == ENOENT);
}

FS_TEST("FALLOCATE with KEEP_SIZE allocates, PUNCH_HOLE zeroes a range") {
  uint64_t fh = Open(Path("f"), FsOpenFlag::kRdwr | FsOpenFlag::kCreat, 0644);
  std::string data(64 * 1024, 'x');
  REQUIRE(Ok(FsWriteRequest{fh, 0, data}).written == data.size());
  int keep = Errno(FsFallocateRequest{fh, FsFallocateFlag::kKeepSize, 0, 1 << 20});
  if (keep == EOPNOTSUPP) {
    WARN("SKIPPED: " << dir << " has no fallocate");
    return;
  }
  REQUIRE(keep == 0);
  FsAttr a = Ok(FsGetattrRequest{std::nullopt, fh}).attr;
  CHECK(a.size == data.size());
  CHECK(a.blocks * 512 >= 1 << 20);

  Ok(FsFallocateRequest{fh, FsFallocateFlag::kKeepSize | FsFallocateFlag::kPunchHole, 4096, 8192});
  std::string back = Ok(FsReadRequest{fh, 0, static_cast<uint32_t>(data.size())}).data;
  REQUIRE(back.size() == data.size());
  CHECK(back.substr(0, 4096) == std::string(4096, 'x'));
  CHECK(back.substr(4096, 8192) == std::string(8192, '\0'));
  CHECK(back.substr(12288) == std::string(data.size() - 12288, 'x'));
  CHECK(Ok(FsGetattrRequest{std::nullopt, fh}).attr.size == data.size());

  // Without KEEP_SIZE the file grows.
  Ok(FsFallocateRequest{fh, 0, 0, 2 << 20});
  CHECK(Ok(FsGetattrRequest{std::nullopt, fh}).attr.size == 2 << 20);
  // The kernel refuses a hole punched without KEEP_SIZE.
  CHECK(Errno(FsFallocateRequest{fh, FsFallocateFlag::kPunchHole, 0, 4096}) == EOPNOTSUPP);
  CHECK(Errno(FsFallocateRequest{fh, 0, 0, 0}) == EINVAL);
}

FS_TEST("a 1000-entry directory lists completely over several READDIR pages") {
  REQUIRE(mkdir(Path("big").c_str(), 0755) == 0);
  std::map<std::string, size_t> expected;  // name -> size
  for (int i = 0; i < 1000; ++i) {
    std::string name = "entry-" + std::to_string(i) + "-" + std::string(200, 'n');
    size_t size = static_cast<size_t>(i % 97);
    WriteLocal(Path("big/" + name), std::string(size, 'd'));
    expected[name] = size;
  }
  REQUIRE(symlink("target", Path("big/a-link").c_str()) == 0);
  REQUIRE(mkdir(Path("big/a-dir").c_str(), 0700) == 0);

  uint64_t dh = Ok(FsOpendirRequest{Path("big")}).fh;
  auto list_all = [&](uint32_t max_bytes, int* pages) {
    std::vector<FsDirEntry> all;
    uint64_t offset = 0;
    *pages = 0;
    for (;;) {
      FsReaddirReply page = Ok(FsReaddirRequest{dh, offset, max_bytes});
      ++*pages;
      REQUIRE(*pages < 10000);
      for (FsDirEntry& e : page.entries) all.push_back(std::move(e));
      if (page.eof) break;
      REQUIRE_FALSE(page.entries.empty());
      offset = all.back().offset;
    }
    return all;
  };
  int pages = 0;
  std::vector<FsDirEntry> all = list_all(0, &pages);
  CHECK(pages > 1);  // 1000 entries of 200+ byte names exceed one default page
  std::set<std::string> seen;
  for (const FsDirEntry& e : all) {
    INFO(e.name);
    CHECK(seen.insert(e.name).second);  // no entry twice
    REQUIRE(e.attr.has_value());
    struct stat st = LstatLocal(Path("big/" + e.name));
    CHECK(e.attr->ino == st.st_ino);
    CHECK(e.ino == st.st_ino);
    CHECK(e.attr->mode == st.st_mode);
    CHECK(e.type == (st.st_mode & S_IFMT));
    if (auto it = expected.find(e.name); it != expected.end()) {
      CHECK(e.attr->size == it->second);
      CHECK(e.attr->mode == (S_IFREG | 0644));
    }
  }
  CHECK(seen.size() == 1004);
  for (const auto& [name, size] : expected) CHECK(seen.count(name) == 1);
  CHECK(seen.count(".") == 1);
  CHECK(seen.count("..") == 1);
  CHECK(seen.count("a-link") == 1);
  CHECK(seen.count("a-dir") == 1);

  // Small pages: many more round trips, the same entries in the same order.
  int small_pages = 0;
  std::vector<FsDirEntry> again = list_all(4096, &small_pages);
  CHECK(small_pages > 50);
  REQUIRE(again.size() == all.size());
  for (size_t i = 0; i < all.size(); ++i) CHECK(again[i].name == all[i].name);

  // Resuming from any entry's offset continues right after it.
  FsReaddirReply from_mid = Ok(FsReaddirRequest{dh, all[499].offset, 0});
  REQUIRE_FALSE(from_mid.entries.empty());
  CHECK(from_mid.entries[0].name == all[500].name);
  FsReaddirReply restart = Ok(FsReaddirRequest{dh, 0, 4096});
  CHECK(restart.entries[0].name == all[0].name);

  Ok(FsReleasedirRequest{dh});
  CHECK(Errno(FsReaddirRequest{dh, 0, 0}) == EBADF);
  CHECK(Errno(FsReleasedirRequest{dh}) == EBADF);
  CHECK(Errno(FsOpendirRequest{Path("missing")}) == ENOENT);
  CHECK(Errno(FsOpendirRequest{Path("big/a-link")}) == ENOENT);  // dangling symlink

  // LISTDIR: one round trip, the same entries, eof only when all fit.
  FsReaddirReply whole = Ok(FsListdirRequest{Path("big"), kFsMaxReaddirBytes});
  if (whole.eof) {
    CHECK(whole.entries.size() == all.size());
  } else {
    CHECK(whole.entries.size() < all.size());
  }
  FsReaddirReply part = Ok(FsListdirRequest{Path("big"), 8192});
  CHECK_FALSE(part.eof);  // 8 KiB holds a few of these entries, not 1004
  CHECK(part.entries.size() < 40);
  for (size_t i = 0; i < whole.entries.size(); ++i) CHECK(whole.entries[i].name == all[i].name);
  REQUIRE(mkdir(Path("small").c_str(), 0755) == 0);
  WriteLocal(Path("small/one"), "1");
  FsReaddirReply small = Ok(FsListdirRequest{Path("small"), 0});
  CHECK(small.eof);
  std::set<std::string> names;
  for (const FsDirEntry& e : small.entries) {
    names.insert(e.name);
    CHECK(e.attr.has_value());
  }
  CHECK(names == std::set<std::string>{".", "..", "one"});
  CHECK(Errno(FsListdirRequest{Path("missing"), 0}) == ENOENT);
  CHECK(Errno(FsListdirRequest{Path("small/one"), 0}) == ENOTDIR);
}

FS_TEST("listed entries say whether they have xattrs when asked, a symlink for itself") {
  WriteLocal(Path("with"), "w");
  WriteLocal(Path("without"), "o");
  REQUIRE(symlink("with", Path("link").c_str()) == 0);
  if (setxattr(Path("with").c_str(), "user.mproxy", "v", 1, 0) != 0) {
    WARN("SKIPPED: " << dir << " has no user xattrs: " << std::strerror(errno));
    return;
  }
  auto no_xattrs = [](const FsReaddirReply& listed) {
    std::map<std::string, bool> none;
    for (const FsDirEntry& e : listed.entries) {
      REQUIRE(e.attr.has_value());
      none[e.name] = e.attr->no_xattrs;
    }
    return none;
  };
  for (bool whole : {true, false}) {
    INFO((whole ? "LISTDIR" : "READDIR"));
    FsReaddirReply listed;
    FsReaddirReply unasked;
    if (whole) {
      listed = Ok(FsListdirRequest{dir, 0, true});
      unasked = Ok(FsListdirRequest{dir, 0});
    } else {
      uint64_t dh = Ok(FsOpendirRequest{dir}).fh;
      listed = Ok(FsReaddirRequest{dh, 0, 0, true});
      unasked = Ok(FsReaddirRequest{dh, 0, 0});
      Ok(FsReleasedirRequest{dh});
    }
    std::map<std::string, bool> none = no_xattrs(listed);
    CHECK(none.at("with") == false);
    CHECK(none.at("without") == true);
    CHECK(none.at("link") == true);  // the symlink's own, not its target's
    // Not asked: unknown (false) for every entry, which costs no listxattr.
    for (const auto& [name, known_none] : no_xattrs(unasked)) {
      INFO(name);
      CHECK_FALSE(known_none);
    }
  }
}

FS_TEST("an empty directory reads as . and .. with eof") {
  REQUIRE(mkdir(Path("empty").c_str(), 0755) == 0);
  uint64_t dh = Ok(FsOpendirRequest{Path("empty")}).fh;
  FsReaddirReply page = Ok(FsReaddirRequest{dh, 0, 0});
  CHECK(page.eof);
  CHECK(page.entries.size() == 2);
  FsReaddirReply after = Ok(FsReaddirRequest{dh, page.entries.back().offset, 0});
  CHECK(after.eof);
  CHECK(after.entries.empty());
}

FS_TEST("200 READs sent before any reply are all answered correctly") {
  const uint64_t kSize = 4 << 20;
  WriteLocal(Path("data"), Pattern(0, kSize));
  uint64_t fh = Open(Path("data"), FsOpenFlag::kRdonly);
  std::mt19937_64 rng(42);
  std::map<uint64_t, std::pair<uint64_t, uint32_t>> asked;  // id -> offset, size
  for (int i = 0; i < 200; ++i) {
    uint64_t offset = rng() % (kSize + 1000);
    auto size = static_cast<uint32_t>(1 + rng() % (64 * 1024));
    asked[Post(FsReadRequest{fh, offset, size})] = {offset, size};
  }
  // A ping among them is answered too: the loop is not blocked.
  agent.Send(Ping{4242});
  auto replies = Await(200);
  REQUIRE(replies.size() == 200);
  for (const auto& [id, what] : asked) {
    INFO("request " << id << " offset " << what.first << " size " << what.second);
    auto r = ParseFsReplyFor<FsReadRequest>(replies.at(id));
    REQUIRE(r.ok());
    uint64_t offset = what.first;
    uint64_t end = std::min<uint64_t>(offset + what.second, kSize);
    CHECK(r->data == Pattern(offset, offset < end ? end - offset : 0));
  }
  REQUIRE(agent.RunUntil([&] {
    for (const auto& m : agent.messages) {
      if (const auto* p = std::get_if<Pong>(&m); p != nullptr && p->id == 4242) return true;
    }
    return false;
  }));
}

FS_TEST("60 full-size READs at once are paced to the output and all arrive") {
  // 30 MiB of replies finish on the workers far faster than a pipe drains;
  // they must wait for room instead of overflowing the control backlog.
  const uint64_t kSize = 8 << 20;
  WriteLocal(Path("data"), Pattern(0, kSize));
  uint64_t fh = Open(Path("data"), FsOpenFlag::kRdonly);
  std::map<uint64_t, uint64_t> asked;  // id -> offset
  for (uint64_t i = 0; i < 60; ++i) {
    uint64_t offset = (i * 977 * 1024) % kSize;
    asked[Post(FsReadRequest{fh, offset, kFsMaxIo})] = offset;
  }
  auto replies = Await(60);
  for (const auto& [id, offset] : asked) {
    INFO("offset " << offset);
    auto r = ParseFsReplyFor<FsReadRequest>(replies.at(id));
    REQUIRE(r.ok());
    CHECK(r->data == Pattern(offset, std::min<uint64_t>(kFsMaxIo, kSize - offset)));
  }
  CHECK(agent.agent_stderr.find("backlog") == std::string::npos);
}

FS_TEST("RELEASE while READs are in flight answers every request and crashes nothing") {
  const uint64_t kSize = 4 << 20;
  WriteLocal(Path("data"), Pattern(0, kSize));
  for (int round = 0; round < 5; ++round) {
    uint64_t fh = Open(Path("data"), FsOpenFlag::kRdonly);
    std::map<uint64_t, uint64_t> reads;  // id -> offset
    for (int i = 0; i < 40; ++i) {
      uint64_t offset = static_cast<uint64_t>(i) * 100000;
      reads[Post(FsReadRequest{fh, offset, kFsMaxIo})] = offset;
    }
    uint64_t release = Post(FsReleaseRequest{fh});
    for (int i = 0; i < 40; ++i) {
      uint64_t offset = static_cast<uint64_t>(i) * 50000;
      reads[Post(FsReadRequest{fh, offset, 4096})] = offset;
    }
    auto replies = Await(81);
    CHECK(replies.at(release).err == 0);
    int answered = 0;
    for (const auto& [id, offset] : reads) {
      const FsReply& r = replies.at(id);
      if (r.err == EBADF) continue;  // ran after the RELEASE
      REQUIRE(r.err == 0);
      auto read = ParseFsReplyFor<FsReadRequest>(r);
      REQUIRE(read.ok());
      CHECK(read->data == Pattern(offset, read->data.size()));
      ++answered;
    }
    INFO(answered << " of 80 READs ran before the RELEASE");  // any split is fine
    CHECK(Errno(FsReadRequest{fh, 0, 1}) == EBADF);
  }
}

FS_TEST("more requests than the in-flight limit are each answered once") {
  WriteLocal(Path("f"), "x");
  const size_t n = proto::kFsMaxInFlight * 3;
  std::set<uint64_t> ids;
  for (size_t i = 0; i < n; ++i) ids.insert(Post(FsGetattrRequest{Path("f"), std::nullopt}));
  auto replies = Await(n);
  size_t ok = 0, again = 0;
  for (uint64_t id : ids) {
    int err = replies.at(id).err;
    CHECK((err == 0 || err == EAGAIN));
    (err == 0 ? ok : again)++;
  }
  CHECK(ok + again == n);
  CHECK(ok >= proto::kFsMaxInFlight / 2);
  CHECK(Ok(FsGetattrRequest{Path("f"), std::nullopt}).attr.size == 1);
}

FS_TEST("opening past the handle limit gives EMFILE, and releasing makes room") {
  WriteLocal(Path("f"), "x");
  std::vector<uint64_t> open;
  int emfile = 0;
  for (int batch = 0; batch < 9; ++batch) {
    std::vector<uint64_t> ids;
    for (int i = 0; i < 500; ++i) ids.push_back(Post(FsOpenRequest{Path("f"), 0, 0}));
    auto replies = Await(ids.size());
    for (uint64_t id : ids) {
      const FsReply& r = replies.at(id);
      if (r.err == EMFILE || r.err == ENFILE) {
        ++emfile;
        continue;
      }
      REQUIRE(r.err == 0);
      open.push_back(ParseFsReplyFor<FsOpenRequest>(r)->fh);
    }
  }
  CHECK(emfile > 0);
  CHECK(open.size() <= proto::kFsMaxHandles);
  for (size_t start = 0; start < open.size(); start += 500) {
    size_t end = std::min(open.size(), start + 500);
    for (size_t i = start; i < end; ++i) Post(FsReleaseRequest{open[i]});
    for (const auto& [id, r] : Await(end - start)) CHECK(r.err == 0);
  }
  CHECK(Open(Path("f"), FsOpenFlag::kRdonly) != 0);
}

FS_TEST("a FIFO made by MKNOD never blocks OPEN or READ") {
  FsAttr fifo = Ok(FsMknodRequest{Path("fifo"), S_IFIFO | 0600, 0}).attr;
  CHECK(S_ISFIFO(fifo.mode));
  CHECK((fifo.mode & 07777) == 0600);
  CHECK(Errno(FsOpenRequest{Path("fifo"), FsOpenFlag::kWronly, 0}) == ENXIO);  // no reader
  uint64_t reader = Open(Path("fifo"), FsOpenFlag::kRdonly);
  CHECK(Errno(FsReadRequest{reader, 0, 10}) == ESPIPE);
  Ok(FsReleaseRequest{reader});
  FsAttr reg = Ok(FsMknodRequest{Path("reg"), S_IFREG | 0640, 0}).attr;
  CHECK(reg.mode == (S_IFREG | 0640));
  FsAttr sock = Ok(FsMknodRequest{Path("sock"), S_IFSOCK | 0600, 0}).attr;
  CHECK(S_ISSOCK(sock.mode));
  CHECK(Errno(FsMknodRequest{Path("reg"), S_IFREG | 0600, 0}) == EEXIST);
}

FS_TEST("garbage requests get EINVAL, ENOSYS or EBADF and the session goes on") {
  WriteLocal(Path("f"), "content");
  auto raw = [&](uint32_t op, FsFields fields) {
    FsRequest r;
    r.id = next_id++;
    r.op = op;
    r.fields = std::move(fields);
    auto reply = agent.FsCall(r);
    REQUIRE(reply.has_value());
    CHECK(reply->id == r.id);
    return reply->err;
  };
  CHECK(raw(0, {}) == ENOSYS);
  CHECK(raw(99, {{1, std::string("/x")}}) == ENOSYS);
  CHECK(raw(static_cast<uint32_t>(FsOp::kRead), {{1, std::string("fh")}}) == EINVAL);
  CHECK(raw(static_cast<uint32_t>(FsOp::kRead), {}) == EINVAL);
  CHECK(raw(static_cast<uint32_t>(FsOp::kOpen), {{1, std::string("relative")}}) == EINVAL);
  CHECK(raw(static_cast<uint32_t>(FsOp::kOpen), {{1, Path("f")}, {2, uint64_t{1} << 20}}) ==
        EINVAL);
  CHECK(raw(static_cast<uint32_t>(FsOp::kGetattr), {{1, int64_t{-5}}}) == EINVAL);
  CHECK(raw(static_cast<uint32_t>(FsOp::kRead),
            {{1, uint64_t{1}}, {2, uint64_t{0}}, {3, uint64_t{64} << 20}}) == EINVAL);
  CHECK(raw(static_cast<uint32_t>(FsOp::kWrite),
            {{1, uint64_t{1}}, {2, uint64_t{0}}, {3, std::string(kFsMaxIo + 1, 'w')}}) == EINVAL);
  // Handles that do not exist, or are of the other kind.
  CHECK(Errno(FsReadRequest{12345, 0, 1}) == EBADF);
  CHECK(Errno(FsWriteRequest{0, 0, "x"}) == EBADF);
  CHECK(Errno(FsFsyncRequest{~0ULL, false}) == EBADF);
  uint64_t fh = Open(Path("f"), FsOpenFlag::kRdonly);
  uint64_t dh = Ok(FsOpendirRequest{dir}).fh;
  CHECK(Errno(FsReaddirRequest{fh, 0, 0}) == EBADF);
  CHECK(Errno(FsReleasedirRequest{fh}) == EBADF);
  CHECK(Errno(FsReadRequest{dh, 0, 1}) == EBADF);
  CHECK(Errno(FsReleaseRequest{dh}) == EBADF);
  CHECK(Errno(FsFallocateRequest{dh, 0, 0, 1}) == EBADF);
  Ok(FsFsyncRequest{dh, false});  // fsync works on both kinds
  // The same handles still work, and so does the rest of the session.
  CHECK(Ok(FsReadRequest{fh, 0, 100}).data == "content");
  CHECK_FALSE(Ok(FsReaddirRequest{dh, 0, 0}).entries.empty());
  auto& echo = agent.Run(MakeExec(1, {"echo", "still here"}));
  REQUIRE(echo.exit);
  CHECK(echo.out[1] == "still here\n");
}

FS_TEST("the agent's Hello announces the fs capability") {
  REQUIRE(agent.peer_hello);
  const auto& caps = agent.peer_hello->capabilities;
  CHECK(std::find(caps.begin(), caps.end(), "fs") != caps.end());
}

// Whether /proc/<pid>/fd has an fd open on `path`.
bool HasOpen(pid_t pid, const std::string& path) {
  std::error_code ec;
  std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec);
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::error_code link_ec;
    auto target = std::filesystem::read_symlink(it->path(), link_ec);
    if (!link_ec && target == path) return true;
  }
  return false;
}

// The process state letter from /proc/<pid>/stat ('Z' for a zombie).
char ProcState(pid_t pid) {
  std::string stat;
  FILE* f = fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (f == nullptr) return '?';
  char buf[512] = {};
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  stat.assign(buf, n);
  auto paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? '?' : stat[paren + 2];
}

FS_TEST("handles are closed when the session ends, not when the agent exits") {
  WriteLocal(Path("held"), "x");
  REQUIRE(mkdir(Path("dir").c_str(), 0755) == 0);
  Open(Path("held"), FsOpenFlag::kRdonly);
  Ok(FsOpendirRequest{Path("dir")});
  pid_t pid = agent.agent_pid();
  CHECK(HasOpen(pid, Path("held")));
  CHECK(HasOpen(pid, Path("dir")));
  // A child that ignores SIGHUP keeps the agent alive for its kill grace
  // (2 s) after the session ends: long enough to look at its fds.
  agent.Send(MakeExec(1, {"sh", "-c", "trap '' HUP; echo ready; exec sleep 30"}));
  REQUIRE(agent.RunUntil([&] { return agent.channel(1).out[1] == "ready\n"; }));
  agent.CloseStdin();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  bool closed = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!HasOpen(pid, Path("held")) && !HasOpen(pid, Path("dir"))) {
      closed = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  char state = ProcState(pid);
  CHECK(closed);
  CHECK(state != 'Z');  // the agent was still running when they were closed
  CHECK(state != '?');
  auto status = agent.WaitAgent();
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
}

}  // namespace
}  // namespace mproxy::testing
