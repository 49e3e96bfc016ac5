// Host key checking and authentication errors against a real sshd.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "broker/ssh_connection.h"
#include "tests/broker/ssh_test_util.h"

namespace mproxy::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string ConnectError(const broker::SshOptions& options) {
  broker::SshConnection c(options);
  Status s = c.Connect();
  REQUIRE_FALSE(s.ok());
  return s.error().message();
}

TEST_CASE("an unknown host key is refused with its fingerprint and the command to trust it",
          "[broker][ssh]") {
  auto f = SshdFixture::StartOrSkip();
  auto o = OptionsFor(*f);
  o.known_hosts_path = f->dir() + "/empty_known_hosts";
  REQUIRE(Sh("touch " + o.known_hosts_path));
  std::string msg = ConnectError(o);
  INFO(msg);
  CHECK(msg.find("the host key of [127.0.0.1]:" + std::to_string(f->port()) + " is not known") !=
        std::string::npos);
  CHECK(msg.find("SHA256:") != std::string::npos);
  CHECK(msg.find("ssh-keyscan -p " + std::to_string(f->port()) + " 127.0.0.1 >> " +
                 o.known_hosts_path) != std::string::npos);
  CHECK(msg.find("--accept-new-host-key") != std::string::npos);
  CHECK(ReadFile(o.known_hosts_path).empty());  // nothing was added
}

TEST_CASE("the fingerprint in the refusal is the host key's real SHA256 fingerprint",
          "[broker][ssh]") {
  auto f = SshdFixture::StartOrSkip();
  auto o = OptionsFor(*f);
  o.known_hosts_path = f->dir() + "/missing_known_hosts";  // does not exist
  std::string msg = ConnectError(o);
  // ssh-keygen -lf prints "256 SHA256:... comment (ED25519)".
  std::string out_path = f->dir() + "/fp";
  REQUIRE(Sh("ssh-keygen -lf " + f->host_public_key_path() + " | awk '{print $2}' > " + out_path));
  std::string fp = ReadFile(out_path);
  while (!fp.empty() && fp.back() == '\n') fp.pop_back();
  INFO(msg);
  REQUIRE(fp.rfind("SHA256:", 0) == 0);
  CHECK(msg.find(fp) != std::string::npos);
}

TEST_CASE("a changed host key is refused loudly, naming the known_hosts line", "[broker][ssh]") {
  auto f = SshdFixture::StartOrSkip();
  auto o = OptionsFor(*f);
  // Record a different ed25519 key for the same [host]:port.
  std::string other = f->dir() + "/other_host_key";
  REQUIRE(Sh("ssh-keygen -q -t ed25519 -N '' -f " + other));
  o.known_hosts_path = f->dir() + "/changed_known_hosts";
  REQUIRE(Sh("{ echo '# comment'; printf '[127.0.0.1]:" + std::to_string(f->port()) +
             " '; cut -d' ' -f1,2 " + other + ".pub; } > " + o.known_hosts_path));
  std::string msg = ConnectError(o);
  INFO(msg);
  CHECK(msg.find("WARNING: REMOTE HOST KEY HAS CHANGED") != std::string::npos);
  CHECK(msg.find("SHA256:") != std::string::npos);
  CHECK(msg.find(o.known_hosts_path + " line 2") != std::string::npos);
  CHECK(msg.find("Refusing to connect") != std::string::npos);

  SECTION("even with accept_new") {
    o.accept_new_host_key = true;
    std::string again = ConnectError(o);
    CHECK(again.find("WARNING: REMOTE HOST KEY HAS CHANGED") != std::string::npos);
  }
}

TEST_CASE("accept_new adds an unknown host key to known_hosts and later connections use it",
          "[broker][ssh]") {
  auto f = SshdFixture::StartOrSkip();
  auto o = OptionsFor(*f);
  o.known_hosts_path = f->dir() + "/new_known_hosts";
  o.accept_new_host_key = true;
  {
    broker::SshConnection c(o);
    Status s = c.Connect();
    INFO((s.ok() ? "" : s.error().message()));
    REQUIRE(s.ok());
  }
  std::string recorded = ReadFile(o.known_hosts_path);
  INFO(recorded);
  CHECK(recorded.find("[127.0.0.1]:" + std::to_string(f->port()) + " ssh-ed25519 ") !=
        std::string::npos);
  o.accept_new_host_key = false;
  broker::SshConnection again(o);
  Status s = again.Connect();
  INFO((s.ok() ? "" : s.error().message()));
  CHECK(s.ok());
}

TEST_CASE("a wrong user is refused with the methods tried and the server's methods",
          "[broker][ssh]") {
  auto f = SshdFixture::StartOrSkip();
  auto o = OptionsFor(*f);
  o.user = "nobody";
  std::string msg = ConnectError(o);
  INFO(msg);
  CHECK(msg.find("ssh: authentication as nobody@127.0.0.1:" + std::to_string(f->port()) +
                 " failed; tried: public keys (" + f->key_path()) != std::string::npos);
  CHECK(msg.find("the server accepts: publickey") != std::string::npos);
}

TEST_CASE("a key the server does not know is refused with a clear auth error", "[broker][ssh]") {
  auto f = SshdFixture::StartOrSkip();
  auto o = OptionsFor(*f);
  std::string other = f->dir() + "/other_client_key";
  REQUIRE(Sh("ssh-keygen -q -t ed25519 -N '' -f " + other));
  o.identity_files = {other};
  std::string msg = ConnectError(o);
  INFO(msg);
  CHECK(msg.find("ssh: authentication as " + f->user() + "@127.0.0.1:" +
                 std::to_string(f->port()) + " failed; tried: public keys (" + other) !=
        std::string::npos);
  CHECK(msg.find("the server accepts: publickey") != std::string::npos);
}

TEST_CASE("nothing listening gives a connect error naming the target", "[broker][ssh]") {
  auto f = SshdFixture::StartOrSkip();
  auto o = OptionsFor(*f);
  REQUIRE(f->Stop().ok());
  std::string msg = ConnectError(o);
  INFO(msg);
  CHECK(msg.find("ssh: cannot connect to " + f->user() + "@127.0.0.1:" +
                 std::to_string(f->port())) != std::string::npos);
}

}  // namespace
}  // namespace mproxy::testing
