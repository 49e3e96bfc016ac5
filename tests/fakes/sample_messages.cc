// Sample messages with every field set to a non-default value.
#include "tests/fakes/sample_messages.h"

#include <limits>

namespace mproxy::testing {

using namespace proto;

std::vector<Message> SampleMessages() {
  std::vector<Message> out;
  Hello h;
  h.versions = {1, 2};
  h.program_version = "0.1.0";
  h.os = "Linux";
  h.arch = "x86_64";
  h.capabilities = {"exec", "pty", "fs"};
  out.push_back(h);

  Exec e;
  e.channel = 7;
  e.path = "/usr/bin/grep";
  e.argv = {"grep", "-r", std::string("n\0ul", 4), "\xff\xfe not utf-8"};
  e.env = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "EMPTY="};
  e.cwd = "/home/u/src";
  e.fds = {{0, FdSpec::kToChild, false}, {1, FdSpec::kFromChild, true}, {3, FdSpec::kFromChild, false}};
  e.pty = PtySpec{"xterm-256color", 50, 132};
  e.inherit_env = true;
  e.no_started = true;
  out.push_back(e);

  out.push_back(Started{7, 4242});
  out.push_back(Data{7, 1, std::string("hello\0world\n", 12)});
  out.push_back(Eof{7, 0});
  out.push_back(Window{7, 1, 131072});
  out.push_back(Signal{7, "INT"});
  out.push_back(Resize{7, 40, 100});

  Exit code;
  code.channel = 7;
  code.code = 42;
  out.push_back(code);
  Exit sig;
  sig.channel = 8;
  sig.signal = "SEGV";
  sig.core_dumped = true;
  out.push_back(sig);
  Exit err;
  err.channel = 9;
  err.code = 127;
  err.error = "nosuchcmd: command not found";
  out.push_back(err);

  out.push_back(Close{7});
  out.push_back(PathQuery{11, {"/usr/local/bin", "/usr/bin"}});
  PathInfo pi;
  pi.id = 11;
  pi.entries = {{"grep", "/usr/bin/grep", 203152, 0100755, 1700000000},
                {"old", "/opt/old", 1, 0100700, -5}};
  pi.error = "/nonexistent: No such file or directory";
  pi.home = "/home/dev";
  pi.uid = 1000;
  pi.gid = 1000;
  out.push_back(pi);
  FsRequest fr;
  fr.id = 99;
  fr.op = 3;
  fr.fields = {{1, std::string("/path")}, {2, uint64_t{4096}}, {3, int64_t{-1}}};
  out.push_back(fr);
  FsReply fp;
  fp.id = 99;
  fp.err = 2;
  fp.fields = {{1, std::numeric_limits<uint64_t>::max()}};
  out.push_back(fp);
  out.push_back(Ping{std::numeric_limits<uint64_t>::max()});
  out.push_back(Pong{5});
  out.push_back(Log{"warn", "agent: low memory"});
  ErrorMsg em;
  em.code = ErrorMsg::kUnknownMessage;
  em.text = "unknown message type 77";
  em.channel = 3;
  out.push_back(em);
  // File operations last, so the numbered seeds above keep their names.
  uint64_t id = 1000;
  for (const FsOpRequest& r : SampleFsRequests()) out.push_back(MakeFsRequest(id++, r));
  for (const FsOpReply& r : SampleFsReplies()) out.push_back(MakeFsReply(id++, r));
  out.push_back(MakeFsError(id++, 39));
  out.push_back(Stopped{7, "TSTP"});
  return out;
}

namespace {

FsAttr SampleAttr(uint64_t ino) {
  FsAttr a;
  a.ino = ino;
  a.mode = 0100644;
  a.nlink = 2;
  a.uid = 1000;
  a.gid = 100;
  a.size = 1ULL << 40;
  a.blocks = 8;
  a.blksize = 4096;
  a.rdev = 0x10301;
  a.atime = -86400;  // before the epoch
  a.atime_nsec = 999999999;
  a.mtime = 1700000000;
  a.mtime_nsec = 1;
  a.ctime = std::numeric_limits<int64_t>::max();
  a.ctime_nsec = 500;
  return a;
}

}  // namespace

std::vector<FsOpRequest> SampleFsRequests() {
  const std::string odd_path = "/w/not \xff\xfe utf-8";  // bytes, not text
  std::vector<FsOpRequest> out;
  out.push_back(FsGetattrRequest{"/w/file", std::nullopt});
  out.push_back(FsOpendirRequest{"/w"});
  out.push_back(FsReaddirRequest{7, 0x7ffffffffffffffeULL, 65536});
  out.push_back(FsReleasedirRequest{7});
  out.push_back(FsOpenRequest{odd_path,
                              FsOpenFlag::kRdwr | FsOpenFlag::kCreat | FsOpenFlag::kExcl |
                                  FsOpenFlag::kTrunc | FsOpenFlag::kAppend | FsOpenFlag::kNofollow |
                                  FsOpenFlag::kSync | FsOpenFlag::kNoatime,
                              04755, kFsMaxIo});
  out.push_back(FsReadRequest{8, 1ULL << 40, kFsMaxIo});
  out.push_back(FsWriteRequest{8, 4096, std::string("da\0ta", 5)});
  out.push_back(FsWriteRequest{8, 0, "behind", true});
  out.push_back(FsFsyncRequest{8, true});
  out.push_back(FsReleaseRequest{8});
  out.push_back(FsMkdirRequest{"/w/dir", 01777});
  out.push_back(FsMknodRequest{"/w/fifo", 010640, 0x0801});
  out.push_back(FsUnlinkRequest{"/w/gone"});
  out.push_back(FsRmdirRequest{"/w/dir"});
  out.push_back(FsRenameRequest{"/w/a", "/w/b", FsRenameFlag::kExchange});
  out.push_back(FsSymlinkRequest{"/w/link", "../relative/target"});
  out.push_back(FsReadlinkRequest{"/w/link"});
  out.push_back(FsLinkRequest{"/w/a", "/w/hard"});
  FsSetattrRequest sa;
  sa.fh = 9;
  sa.mode = 0600;
  sa.uid = 1000;
  sa.gid = 0;
  sa.size = 0;
  sa.atime = -1;
  sa.atime_nsec = 123;
  sa.mtime_now = true;
  out.push_back(sa);
  out.push_back(FsStatfsRequest{"/w"});
  out.push_back(FsAccessRequest{"/w/file", FsAccessFlag::kRead | FsAccessFlag::kExecute});
  out.push_back(FsGetxattrRequest{"/w/file", "user.mime_type", 64});
  out.push_back(
      FsSetxattrRequest{"/w/file", "user.k", std::string("v\0\1", 3), FsXattrFlag::kCreate});
  out.push_back(FsListxattrRequest{"/w/file", 0});
  out.push_back(FsRemovexattrRequest{"/w/file", "user.k"});
  out.push_back(
      FsFallocateRequest{8, FsFallocateFlag::kKeepSize | FsFallocateFlag::kPunchHole, 4096, 8192});
  out.push_back(FsListdirRequest{"/w/dir", 65536});
  return out;
}

std::vector<FsOpReply> SampleFsReplies() {
  std::vector<FsOpReply> out;
  out.push_back(FsEmptyReply{});
  out.push_back(FsAttrReply{SampleAttr(42)});
  out.push_back(FsOpenReply{std::numeric_limits<uint64_t>::max(), SampleAttr(43), "first bytes", true});
  out.push_back(FsOpendirReply{1});
  FsReaddirReply rd;
  rd.entries.push_back({".", 1, 2, 0040000, SampleAttr(2)});
  rd.entries.push_back({std::string("gone\xff", 5), 2, 77, 0100000, std::nullopt});
  rd.eof = true;
  out.push_back(rd);
  out.push_back(FsReadReply{std::string("file\0data", 9)});
  out.push_back(FsWriteReply{kFsMaxIo});
  out.push_back(FsReadlinkReply{"../target"});
  out.push_back(FsStatfsReply{4096, 4096, 1000000, 500000, 400000, 65536, 60000, 59000,
                              0x1234567890abcdefULL, 1, 255});
  out.push_back(FsXattrReply{3, std::string("v\0\1", 3)});
  return out;
}

}  // namespace mproxy::testing
