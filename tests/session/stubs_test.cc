// The path-stub directory as the program sees it, and what stays local: the
// entrypoint, its #! interpreter and the --local rules (basename, absolute
// path, /regex/), each proven with the remote-only marker.
#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <iterator>
#include <set>
#include <sstream>

#include "tests/e2e/e2e_util.h"
#include "tests/session/session_fixture.h"

namespace mproxy::session_test {
namespace {

std::set<std::string> Lines(const std::string& text) {
  std::set<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.insert(line);
  return lines;
}

// The names `mproxy paths` lists (first column).
std::set<std::string> RemoteNames(const SessionFixture& s) {
  auto r = e2e::Run(s.Paths(), kLimit);
  INFO("mproxy paths: " << r.Status() << "\n" << r.err);
  REQUIRE(r.Status() == "exit 0");
  std::set<std::string> names;
  for (const auto& line : Lines(r.out)) names.insert(line.substr(0, line.find('\t')));
  return names;
}

std::string Joined(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += n + " ";
  return out;
}

void StubDirListing(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  // With `ls` kept local it can list the local FUSE directory; a remote ls
  // would look for that path on the remote host.
  auto r = s.Bash("ls \"$MPROXY_STUB_DIR\"", {"--local", "ls"});
  CHECK(r.Status() == "exit 0");
  CHECK(r.err == "");
  const auto listed = Lines(r.out);
  for (const char* remote : {"cat", "grep", "sed", "sh", "wc", "sleep"}) {
    INFO(remote);
    CHECK(listed.count(remote) == 1);
  }
  CHECK(listed.count("ls") == 0);    // --local ls
  CHECK(listed.count("bash") == 0);  // the entrypoint
  CHECK(listed.count("bwrap") == 0);

  // Exactly the remote PATH minus what stays local.
  auto expected = RemoteNames(s);
  expected.erase("ls");
  expected.erase("bash");
  expected.erase("bwrap");  // mproxy runs the program with it: always local
  std::set<std::string> extra, missing;
  std::set_difference(listed.begin(), listed.end(), expected.begin(), expected.end(),
                      std::inserter(extra, extra.end()));
  std::set_difference(expected.begin(), expected.end(), listed.begin(), listed.end(),
                      std::inserter(missing, missing.end()));
  CHECK(Joined(extra) == "");
  CHECK(Joined(missing) == "");

  // bash's own glob and completion see the same directory.
  auto glob = s.Bash(
      "printf '%s\\n' \"$MPROXY_STUB_DIR\"/* | wc -l\n"
      "compgen -c gre | grep -qx grep && echo completes\n"
      "[ -x \"$MPROXY_STUB_DIR/grep\" ] && [ -f \"$MPROXY_STUB_DIR/grep\" ] && echo executable\n"
      "{ : >\"$MPROXY_STUB_DIR/new-file\"; } 2>/dev/null || echo read-only\n");
  CHECK(glob.Status() == "exit 0");
  // expected lacks ls, which is listed here.
  CHECK(glob.out == std::to_string(expected.size() + 1) + "\ncompletes\nexecutable\nread-only\n");
  CHECK(glob.err == "");
}
SESSION_TEST_CASE("the stub directory lists the remote commands and not the local ones",
                  StubDirListing)

void LookupsPointIntoStubDir(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  auto r = s.Bash(
      "echo \"$MPROXY_STUB_DIR\"\n"
      "command -v grep\n"
      "type grep\n"
      "type -P cat\n"
      "type -t sed\n"
      "echo \"${PATH%%:*}\"\n"
      "echo \"${MPROXY_SOCK:+sock} ${MPROXY_STUB_DIR:+stubs} ${MPROXY_HOST:+host} "
      "${MPROXY_SESSION:+session}\"\n");
  CHECK(r.Status() == "exit 0");
  CHECK(r.err == "");
  const std::string stubs = r.out.substr(0, r.out.find('\n'));
  INFO("stub dir: " << stubs);
  REQUIRE(!stubs.empty());
  CHECK(stubs.front() == '/');
  CHECK(r.out == stubs + "\n" + stubs + "/grep\ngrep is " + stubs + "/grep\n" + stubs +
                     "/cat\nfile\n" + stubs + "\nsock stubs host session\n");
}
SESSION_TEST_CASE("type grep and command -v grep point into the stub directory",
                  LookupsPointIntoStubDir)

void LocalRules(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  // basename, absolute path, regex; tac matches none of them.
  auto r = s.Bash(
      "cat \"$M\"; echo \"cat $?\"\n"
      "head -c 6 \"$M\"; echo \"head $?\"\n"
      "tail -c 5 \"$M\"; echo \"tail $?\"\n"
      "tac \"$M\"; echo \"tac $?\"\n"
      "for n in cat head tail tac; do\n"
      "  case \"$(type -P \"$n\")\" in \"$MPROXY_STUB_DIR\"/*) echo \"$n stub\" ;;\n"
      "    *) echo \"$n local\" ;; esac\n"
      "done\n",
      {"--local", "cat", "--local", "/usr/bin/head", "--local", "/^ta[il]+$/"});
  CHECK(r.Status() == "exit 0");
  CHECK(r.out == "cat 1\nhead 1\ntail 1\n" + s.MarkerText() +
                     "tac 0\ncat local\nhead local\ntail local\ntac stub\n");
  INFO("stderr:\n" << Quote(r.err));
  CHECK(e2e::CountOf(r.err, "No such file or directory") == 3);
  CHECK(e2e::CountOf(r.err, "\n") == 3);
}
SESSION_TEST_CASE(
    "a basename, an absolute path and a /regex/ --local rule each keep a command local", LocalRules)

// The entrypoint's own name and the interpreter on its #! line (env style)
// run locally; a nested bash or sh cannot see the marker.
void EntrypointAndInterpreterLocal(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  const std::string probe = " -c '[ -e \"$1\" ] && echo \"$0 remote\" || echo \"$0 local\"' ";
  auto nested = s.Bash("bash" + probe +
                       "bash \"$M\"\nperl -e 'print -e $ARGV[0] ? \"perl remote\\n\" : "
                       "\"perl local\\n\"' \"$M\"\n");
  CHECK(nested.Status() == "exit 0");
  CHECK(nested.out == "bash local\nperl remote\n");
  CHECK(nested.err == "");

  const std::string entry = s.scratch() + "/entry";
  e2e::WriteFile(entry,
                 "#!/usr/bin/env sh\n"
                 "cat \"$M\"\n"
                 "sh" +
                     probe +
                     "sh \"$M\"\n"
                     "bash" +
                     probe + "bash \"$M\"\n");
  REQUIRE(chmod(entry.c_str(), 0755) == 0);
  s.GiveToUser(entry);
  Child::Options o;
  o.argv = s.Mproxy({entry});
  auto r = Child::Spawn(o)->Communicate("", kLimit);
  CHECK(r.Status() == "exit 0");
  CHECK(r.out == s.MarkerText() + "sh local\nbash remote\n");
  CHECK(r.err == "");
}
SESSION_TEST_CASE("the entrypoint and the interpreter on its #! line run locally",
                  EntrypointAndInterpreterLocal)

}  // namespace
}  // namespace mproxy::session_test
