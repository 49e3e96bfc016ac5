// Host key checks as a user meets them through `mproxy exec`: unknown keys and
// changed keys are refused with what to do about it; --accept-new-host-key
// records a new key but never overrides a changed one.
#include <catch2/catch.hpp>

#include "tests/e2e/child.h"
#include "tests/e2e/e2e_util.h"
#include "tests/support/sshd_fixture.h"

namespace mproxy::e2e {
namespace {

using std::chrono::seconds;
using testing::SshdFixture;

constexpr seconds kLimit(60);

// `mproxy exec` straight at the fixture's port with our own known_hosts and
// no ssh_config at all.
std::vector<std::string> Argv(const SshdFixture& f, const std::string& known_hosts,
                              bool accept_new) {
  std::vector<std::string> argv = {MproxyPath(),
                                   "exec",
                                   "-F",
                                   "none",
                                   "-p",
                                   std::to_string(f.port()),
                                   "-l",
                                   f.user(),
                                   "-i",
                                   f.key_path(),
                                   "--known-hosts",
                                   known_hosts};
  if (accept_new) argv.push_back("--accept-new-host-key");
  argv.insert(argv.end(), {f.host(), "--", "echo", "connected"});
  return argv;
}

// "SHA256:..." of the fixture's host key, as ssh-keygen shows it.
std::string HostFingerprint(const SshdFixture& f) {
  auto r = Run({"/usr/bin/ssh-keygen", "-l", "-f", f.host_public_key_path()}, seconds(30));
  REQUIRE(r.Status() == "exit 0");
  auto start = r.out.find("SHA256:");
  REQUIRE(start != std::string::npos);
  return r.out.substr(start, r.out.find(' ', start) - start);
}

TEST_CASE("an unknown host key is refused with its fingerprint and how to trust it", "[e2e]") {
  auto f = SshdFixture::StartOrSkip();
  TempDir tmp;
  const std::string kh = tmp.path() + "/known_hosts";
  WriteFile(kh, "");

  auto r = Run(Argv(*f, kh, false), kLimit);
  CHECK(r.Status() == "exit 255");
  CHECK(r.out == "");
  CHECK(r.err.rfind("mproxy: ", 0) == 0);
  CHECK(r.err.find(HostFingerprint(*f)) != std::string::npos);
  CHECK(r.err.find("ssh-keyscan") != std::string::npos);
  CHECK(r.err.find("--accept-new-host-key") != std::string::npos);
  CHECK(ReadFile(kh) == "");  // never accepted silently

  SECTION("the ssh-keyscan command it suggests makes the host known") {
    const std::string marker = "trust it with\n  ";
    auto at = r.err.find(marker);
    REQUIRE(at != std::string::npos);
    at += marker.size();
    const std::string command = r.err.substr(at, r.err.find('\n', at) - at);
    INFO("suggested: " << command);
    REQUIRE(command.rfind("ssh-keyscan ", 0) == 0);
    auto scan = Run({"/bin/sh", "-c", command}, kLimit);
    REQUIRE(scan.Status() == "exit 0");

    auto again = Run(Argv(*f, kh, false), kLimit);
    CHECK(again.Status() == "exit 0");
    CHECK(again.out == "connected\n");
    CHECK(again.err == "");
  }
  SECTION("--accept-new-host-key records the key, and later runs need no flag") {
    auto accepted = Run(Argv(*f, kh, true), kLimit);
    CHECK(accepted.Status() == "exit 0");
    CHECK(accepted.out == "connected\n");
    CHECK(accepted.err == "");
    CHECK(ReadFile(kh) != "");

    auto again = Run(Argv(*f, kh, false), kLimit);
    CHECK(again.Status() == "exit 0");
    CHECK(again.out == "connected\n");
    CHECK(again.err == "");
  }
}

TEST_CASE("a changed host key is refused loudly, even with --accept-new-host-key", "[e2e]") {
  auto f = SshdFixture::StartOrSkip();
  TempDir tmp;
  // known_hosts names the fixture's address with some other ed25519 key.
  auto gen = Run({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "other", "-f",
                  tmp.path() + "/other"},
                 seconds(30));
  REQUIRE(gen.Status() == "exit 0");
  std::string other = ReadFile(tmp.path() + "/other.pub");
  other = other.substr(0, other.rfind(' '));  // "ssh-ed25519 AAAA..."
  const std::string kh = tmp.path() + "/known_hosts";
  const std::string entry = "[127.0.0.1]:" + std::to_string(f->port()) + " " + other + "\n";
  WriteFile(kh, entry);

  for (bool accept_new : {false, true}) {
    INFO("--accept-new-host-key: " << accept_new);
    auto r = Run(Argv(*f, kh, accept_new), kLimit);
    CHECK(r.Status() == "exit 255");
    CHECK(r.out == "");
    CHECK(r.err.rfind("mproxy: ", 0) == 0);
    CHECK(r.err.find("REMOTE HOST KEY HAS CHANGED") != std::string::npos);
    CHECK(r.err.find(HostFingerprint(*f)) != std::string::npos);
    CHECK(ReadFile(kh) == entry);
  }
}

}  // namespace
}  // namespace mproxy::e2e
