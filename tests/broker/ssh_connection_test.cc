// SshConnection and SshTransport against a real sshd on loopback: commands,
// where they run, streaming, config aliases, and a dying or hung server.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <mutex>

#include "broker/ssh_connection.h"
#include "broker/ssh_transport.h"
#include "tests/broker/ssh_test_util.h"

namespace mproxy::testing {
namespace {

using broker::SshConnection;
using namespace std::chrono_literals;

// FNV-1a, fed in pieces.
struct Hash {
  std::uint64_t h = 1469598103934665603ull;
  std::uint64_t size = 0;
  void Add(std::string_view d) {
    for (unsigned char c : d) {
      h ^= c;
      h *= 1099511628211ull;
    }
    size += d.size();
  }
};

std::string Chunk(std::uint64_t seed, size_t len) {
  std::string out(len, '\0');
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < len; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    for (size_t j = 0; j < 8 && i + j < len; ++j) out[i + j] = static_cast<char>(x >> (8 * j));
  }
  return out;
}

std::unique_ptr<SshConnection> ConnectTo(const SshdFixture& f) {
  auto c = std::make_unique<SshConnection>(OptionsFor(f));
  Status s = c->Connect();
  INFO((s.ok() ? "" : s.error().message() + "\nsshd log:\n" + f.LogTail()));
  REQUIRE(s.ok());
  return c;
}

TEST_CASE("RunCommand returns the exit status and stdout of a remote command",
          "[broker][ssh]") {
  auto f = SshdFixture::StartOrSkip();
  auto c = ConnectTo(*f);
  auto r = c->RunCommand("echo hi; echo oops >&2; exit 3", "");
  REQUIRE(r.ok());
  CHECK(r->exit_code == 3);
  CHECK(r->out == "hi\n");
  CHECK(r->err == "oops\n");

  SECTION("several commands, one after another, on the same connection") {
    for (int i = 0; i < 20; ++i) {
      auto again = c->RunCommand("echo " + std::to_string(i), "");
      REQUIRE(again.ok());
      CHECK(again->exit_code == 0);
      CHECK(again->out == std::to_string(i) + "\n");
    }
  }
}

TEST_CASE("RunCommand feeds stdin and closes it", "[broker][ssh]") {
  auto f = SshdFixture::StartOrSkip();
  auto c = ConnectTo(*f);
  std::string data = Chunk(7, 3 * 1024 * 1024 + 5);
  auto r = c->RunCommand("wc -c", data);
  REQUIRE(r.ok());
  CHECK(r->exit_code == 0);
  CHECK(r->out == std::to_string(data.size()) + "\n");
}

TEST_CASE("RunCommand reports a command killed by a signal as 128+n", "[broker][ssh]") {
  auto f = SshdFixture::StartOrSkip();
  auto c = ConnectTo(*f);
  auto r = c->RunCommand("kill -TERM $$", "");
  REQUIRE(r.ok());
  CHECK(r->exit_code == 128 + 15);
}

TEST_CASE("commands run on the remote side, where the marker file exists", "[broker][ssh]") {
  auto f = SshdFixture::StartOrSkip();
  if (f->marker_path().empty()) Skip("sshd runs without its own mount namespace here");
  REQUIRE(access(f->marker_path().c_str(), F_OK) != 0);  // not visible locally
  auto c = ConnectTo(*f);
  auto r = c->RunCommand("cat " + f->marker_path() + "; id -un", "");
  REQUIRE(r.ok());
  CHECK(r->exit_code == 0);
  CHECK(r->out == "mproxy remote side, port " + std::to_string(f->port()) + "\n" + f->user() +
                      "\n");
}

TEST_CASE("64 MiB through a remote cat on an exec channel come back intact", "[broker][ssh]") {
  auto f = SshdFixture::StartOrSkip();
  auto c = ConnectTo(*f);
  std::mutex mu;
  Hash received;
  std::string err;
  StatusLatch closed;
  broker::ExecCallbacks cb;
  cb.on_stdout = [&](std::string_view d) {
    std::lock_guard<std::mutex> lock(mu);
    received.Add(d);
  };
  cb.on_stderr = [&](std::string_view d) {
    std::lock_guard<std::mutex> lock(mu);
    err.append(d);
  };
  cb.on_closed = [&](const Status& s) { closed.Set(s); };
  auto id = c->OpenExec("cat", std::move(cb));
  REQUIRE(id.ok());

  Hash sent;
  constexpr int kChunks = 64;
  for (int i = 0; i < kChunks; ++i) {
    std::string chunk = Chunk(static_cast<std::uint64_t>(i), 1 << 20);
    sent.Add(chunk);
    c->Send(*id, std::move(chunk));
  }
  c->SendEof(*id);
  auto status = closed.Wait(120s);
  REQUIRE(status.has_value());
  INFO((status->ok() ? "" : status->error().message()));
  CHECK(status->ok());
  std::lock_guard<std::mutex> lock(mu);
  CHECK(err.empty());
  CHECK(received.size == sent.size);
  CHECK(received.h == sent.h);
}

TEST_CASE("an exec channel forwards remote stderr as whole lines", "[broker][ssh]") {
  auto f = SshdFixture::StartOrSkip();
  auto c = ConnectTo(*f);
  std::mutex mu;
  std::vector<std::string> lines;
  StatusLatch closed;
  broker::ExecCallbacks cb;
  cb.on_stderr = [&](std::string_view d) {
    std::lock_guard<std::mutex> lock(mu);
    lines.emplace_back(d);
  };
  cb.on_closed = [&](const Status& s) { closed.Set(s); };
  auto id = c->OpenExec("printf 'one\\ntw' >&2; sleep 0.2; printf 'o\\nthree' >&2; exit 4",
                        std::move(cb));
  REQUIRE(id.ok());
  auto status = closed.Wait(60s);
  REQUIRE(status.has_value());
  REQUIRE_FALSE(status->ok());
  CHECK(status->error().message().find("exited with status 4") != std::string::npos);
  std::lock_guard<std::mutex> lock(mu);
  CHECK(lines == std::vector<std::string>{"one\n", "two\n", "three"});
}

TEST_CASE("a Host alias from an ssh config file is resolved", "[broker][ssh]") {
  auto f = SshdFixture::StartOrSkip();
  broker::SshOptions o;
  o.host = f->alias();
  o.config_path = f->config_path();  // HostName, Port, User, IdentityFile, known_hosts
  o.allow_prompts = false;
  SshConnection c(o);
  Status s = c.Connect();
  INFO((s.ok() ? "" : s.error().message()));
  REQUIRE(s.ok());
  CHECK(c.Describe() == f->user() + "@127.0.0.1:" + std::to_string(f->port()));
  auto r = c.RunCommand("id -un", "");
  REQUIRE(r.ok());
  CHECK(r->out == f->user() + "\n");
}

TEST_CASE("a missing config file is an error naming it", "[broker][ssh]") {
  broker::SshOptions o;
  o.host = "mproxy-test";
  o.config_path = "/nonexistent/ssh_config";
  SshConnection c(o);
  Status s = c.Connect();
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message().find("ssh: config file /nonexistent/ssh_config") !=
        std::string::npos);
}

TEST_CASE("killing sshd mid-session ends the exec channel with an error, without hanging",
          "[broker][ssh]") {
  auto f = SshdFixture::StartOrSkip();
  auto c = ConnectTo(*f);
  StatusLatch closed;
  broker::ExecCallbacks cb;
  cb.on_closed = [&](const Status& s) { closed.Set(s); };
  auto id = c->OpenExec("sleep 600", std::move(cb));
  REQUIRE(id.ok());
  REQUIRE(f->Stop().ok());
  auto status = closed.Wait(60s);
  REQUIRE(status.has_value());
  REQUIRE_FALSE(status->ok());
  INFO(status->error().message());
  CHECK(status->error().message().find("ssh: connection to " + f->user() + "@127.0.0.1:" +
                                       std::to_string(f->port()) + " lost") != std::string::npos);
  CHECK_FALSE(c->alive());
  auto r = c->RunCommand("true", "");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message().find("lost") != std::string::npos);
}

TEST_CASE("a hung server is noticed by keepalives", "[broker][ssh]") {
  auto f = SshdFixture::StartOrSkip();
  if (f->marker_path().empty()) Skip("pausing sshd needs its mount namespace");
  auto c = ConnectTo(*f);  // keepalive every 1 s, 3 unanswered = dead
  StatusLatch closed;
  broker::ExecCallbacks cb;
  cb.on_closed = [&](const Status& s) { closed.Set(s); };
  auto id = c->OpenExec("sleep 600", std::move(cb));
  REQUIRE(id.ok());
  REQUIRE(f->Pause().ok());
  auto status = closed.Wait(60s);
  (void)f->Resume();
  REQUIRE(status.has_value());
  REQUIRE_FALSE(status->ok());
  INFO(status->error().message());
  CHECK(status->error().message().find("lost: no answer to 3 keepalives") != std::string::npos);
}

TEST_CASE("an idle connection stays up: keepalives get answers", "[broker][ssh]") {
  auto f = SshdFixture::StartOrSkip();
  auto c = ConnectTo(*f);  // keepalive every 1 s, 3 unanswered = dead
  std::this_thread::sleep_for(5s);
  CHECK(c->alive());
  auto r = c->RunCommand("echo still", "");
  REQUIRE(r.ok());
  CHECK(r->out == "still\n");
}

TEST_CASE("SshTransport streams hold early output until Start and stop at Close",
          "[broker][ssh]") {
  auto f = SshdFixture::StartOrSkip();
  auto t = broker::SshTransport::Connect(OptionsFor(*f));
  REQUIRE(t.ok());
  auto run = (*t)->Run("cat", "via transport");
  REQUIRE(run.ok());
  CHECK(run->out == "via transport");

  auto stream = (*t)->Open("echo early; cat");
  REQUIRE(stream.ok());
  std::this_thread::sleep_for(200ms);  // "early" arrives before Start
  std::mutex mu;
  std::string out;
  std::atomic<int> closed_calls{0};
  broker::ByteStream::Callbacks cb;
  cb.on_data = [&](std::string_view d) {
    std::lock_guard<std::mutex> lock(mu);
    out.append(d);
  };
  cb.on_closed = [&](const Status&) { ++closed_calls; };
  (*stream)->Start(std::move(cb));
  (*stream)->Send("ping\n");
  for (int i = 0; i < 600; ++i) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (out == "early\nping\n") break;
    }
    std::this_thread::sleep_for(50ms);
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    CHECK(out == "early\nping\n");
  }
  (*stream)->Close();
  std::this_thread::sleep_for(300ms);
  CHECK(closed_calls.load() == 0);  // no callback after Close()
}

}  // namespace
}  // namespace mproxy::testing
