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
  return out;
}

}  // namespace mproxy::testing
