// The rules applied to each shim request: forwarded environment, path
// mapping, command names, and what the entrypoint keeps local.
#include "broker/session_policy.h"

#include <catch2/catch.hpp>

namespace mproxy::broker {
namespace {

using Env = std::vector<std::string>;

const std::string kStub = "/run/user/1000/mproxy/abc123/bin";

EnvPolicy Policy() { return {{"LANG", "LC_*", "TERM"}, {}, kStub}; }

Env Launch() {
  return {"HOME=/home/me", "PATH=" + kStub + ":/usr/bin:/bin", "LANG=C.UTF-8", "EDITOR=vi",
          "MPROXY_SOCK=/run/s", "DISPLAY=:0"};
}

TEST_CASE("an unchanged environment forwards only the keep patterns", "[broker]") {
  CHECK(ForwardedEnv(Launch(), Launch(), Policy()) == Env{"LANG=C.UTF-8"});
}

TEST_CASE("variables the program set or changed are forwarded, removed ones unset",
          "[broker]") {
  Env now = Launch();
  now[3] = "EDITOR=vim";           // changed
  now.push_back("FOO=bar");        // new
  now.erase(now.begin() + 5);      // DISPLAY unset
  Env got = ForwardedEnv(Launch(), now, Policy());
  CHECK(got == Env{"EDITOR=vim", "FOO=bar", "LANG=C.UTF-8", "DISPLAY"});
}

TEST_CASE("MPROXY_*, LD_PRELOAD and LD_LIBRARY_PATH are never forwarded", "[broker]") {
  Env now = Launch();
  now.push_back("MPROXY_OTHER=1");
  now.push_back("LD_PRELOAD=/x.so");
  now.push_back("LD_LIBRARY_PATH=/lib/x");
  now.erase(now.begin() + 4);  // MPROXY_SOCK unset: not "unset" remotely either
  EnvPolicy p = Policy();
  p.keep.push_back("*");  // not even a keep-everything pattern brings them back
  for (const std::string& e : ForwardedEnv(Launch(), now, p)) {
    CHECK(e.rfind("MPROXY_", 0) != 0);
    CHECK(e.rfind("LD_", 0) != 0);
  }
}

TEST_CASE("remove patterns win over changes and keep patterns", "[broker]") {
  Env now = Launch();
  now.push_back("SECRET_TOKEN=x");
  EnvPolicy p = Policy();
  p.remove = {"SECRET_*", "LANG"};
  CHECK(ForwardedEnv(Launch(), now, p).empty());
}

TEST_CASE("PATH is forwarded only when the program changed it, without the stub dir",
          "[broker]") {
  Env now = Launch();
  CHECK(ForwardedEnv(Launch(), now, {{}, {}, kStub}).empty());
  now[1] = "PATH=/opt/node/bin:" + kStub + ":/usr/bin:/bin";
  CHECK(ForwardedEnv(Launch(), now, {{}, {}, kStub}) == Env{"PATH=/opt/node/bin:/usr/bin:/bin"});
  // Moving the stub dir alone is no change.
  now[1] = "PATH=/usr/bin:/bin:" + kStub + "/";
  CHECK(ForwardedEnv(Launch(), now, {{}, {}, kStub}).empty());
}

TEST_CASE("malformed and repeated entries: first wins, no '=' ignored", "[broker]") {
  Env launch = {"A=1"};
  Env now = {"A=2", "A=3", "junk", "=x"};
  CHECK(ForwardedEnv(launch, now, {{}, {}, ""}) == Env{"A=2"});
}

TEST_CASE("StripPathElement keeps the other elements and their order", "[broker]") {
  CHECK(StripPathElement("/s:/usr/bin::/bin:/s/", "/s") == "/usr/bin::/bin");
  CHECK(StripPathElement("/usr/bin", "") == "/usr/bin");
  CHECK(StripPathElement("/s", "/s") == "");
}

TEST_CASE("paths map through the longest matching mount, whole components only",
          "[broker]") {
  std::vector<Mount> m = {{"/home/me/src", "/srv/src"},
                          {"/home/me/src/big", "/data/big"},
                          {"/home/me/notes", "~/notes"},
                          {"/work", "/"}};
  CHECK(MapToRemote(m, "/home/me/src", "/home/r") == "/srv/src");
  CHECK(MapToRemote(m, "/home/me/src/a/b", "/home/r") == "/srv/src/a/b");
  CHECK(MapToRemote(m, "/home/me/src/big/x", "/home/r") == "/data/big/x");
  CHECK(MapToRemote(m, "/home/me/srcx", "/home/r") == "/home/me/srcx");
  CHECK(MapToRemote(m, "/home/me/notes/a", "/home/r/") == "/home/r/notes/a");
  CHECK(MapToRemote(m, "/home/me/notes", "") == "~/notes");
  CHECK(MapToRemote(m, "/work/x", "/home/r") == "/x");
  CHECK(MapToRemote(m, "/work", "/home/r") == "/");
  CHECK(MapToRemote(m, "/tmp", "/home/r") == "/tmp");
}

TEST_CASE("a stub's command name comes from the path the kernel executed", "[broker]") {
  CHECK(CommandName(kStub + "/grep", "grep", kStub) == "grep");
  CHECK(CommandName(kStub + "/grep", "something-else", kStub) == "grep");
  CHECK(CommandName("/usr/local/bin/gcc", "cc", kStub) == "gcc");
  CHECK(CommandName("", "/usr/bin/make", kStub) == "make");
  CHECK(CommandName("", "", kStub).empty());
}

TEST_CASE("the entrypoint, its #! interpreter and env's program stay local", "[broker]") {
  using Names = std::vector<std::string>;
  CHECK(EntrypointLocalNames("/usr/bin/bash", "") == Names{"bash"});
  CHECK(EntrypointLocalNames("/usr/local/bin/claude", "#!/usr/bin/env node") ==
        Names{"claude", "env", "node"});
  CHECK(EntrypointLocalNames("./x.py", "#!/usr/bin/env -S python3 -u") ==
        Names{"x.py", "env", "python3"});
  CHECK(EntrypointLocalNames("./t", "#!/usr/bin/env -u FOO A=1 ruby") ==
        Names{"t", "env", "ruby"});
  CHECK(EntrypointLocalNames("./s", "#! /bin/sh -e\r") == Names{"s", "sh"});
  CHECK(EntrypointLocalNames("./s", "#!") == Names{"s"});
  CHECK(EntrypointLocalNames("./s", "not a script") == Names{"s"});
}

}  // namespace
}  // namespace mproxy::broker
