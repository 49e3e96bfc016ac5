// Authentication as a user meets it: a key held by ssh-agent works with no
// key named anywhere, and without the agent the same command is refused with
// what was tried.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <thread>

#include "tests/e2e/child.h"
#include "tests/e2e/e2e_util.h"
#include "tests/support/sshd_fixture.h"

namespace mproxy::e2e {
namespace {

using std::chrono::seconds;
using testing::SshdFixture;

constexpr seconds kLimit(60);

// `mproxy exec` at the fixture's port with no ssh_config and no -i: the only
// way in is a key from ssh-agent (root has no default keys here, and if it
// had, the negative case below would show it).
std::vector<std::string> AgentOnlyArgv(const SshdFixture& f) {
  return {MproxyPath(), "exec",        "-F", "none", "-p", std::to_string(f.port()),
          "-l",         f.user(),      "--known-hosts", f.known_hosts_path(),
          f.host(),     "--",          "echo", "in via the agent"};
}

Child::Result RunWithEnv(const std::vector<std::string>& argv, std::vector<std::string> env) {
  Child::Options o;
  o.argv = argv;
  o.stdin_kind = Child::StdinKind::kFile;
  o.extra_env = std::move(env);
  return Child::Spawn(o)->Communicate("", kLimit);
}

TEST_CASE("a key held by ssh-agent logs in with no key named", "[e2e]") {
  auto f = SshdFixture::StartOrSkip();
  TempDir tmp;
  const std::string sock = tmp.path() + "/agent.sock";
  Child::Options agent_opts;
  agent_opts.argv = {"/usr/bin/ssh-agent", "-D", "-a", sock};
  agent_opts.stdin_kind = Child::StdinKind::kFile;
  auto agent = Child::Spawn(agent_opts);  // killed when the test ends
  struct stat st {};
  for (int i = 0; i < 500 && stat(sock.c_str(), &st) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(stat(sock.c_str(), &st) == 0);
  auto add = RunWithEnv({"/usr/bin/ssh-add", f->key_path()}, {"SSH_AUTH_SOCK=" + sock});
  REQUIRE(add.Status() == "exit 0");

  auto r = RunWithEnv(AgentOnlyArgv(*f), {"SSH_AUTH_SOCK=" + sock});
  CHECK(r.Status() == "exit 0");
  CHECK(r.out == "in via the agent\n");
  CHECK(r.err == "");

  SECTION("without the agent the same command is refused, naming what was tried") {
    auto denied = RunWithEnv(AgentOnlyArgv(*f), {"SSH_AUTH_SOCK="});
    CHECK(denied.Status() == "exit 255");
    CHECK(denied.out == "");
    CHECK(denied.err.rfind("mproxy: ", 0) == 0);
    CHECK(denied.err.find("authentication as " + f->user() + "@") != std::string::npos);
    CHECK(denied.err.find("failed") != std::string::npos);
  }
}

}  // namespace
}  // namespace mproxy::e2e
