// 100 commands at once over one agent session on one SSH connection, through
// the broker library (Connect, AgentLink, OpenExec), well past sshd's
// MaxSessions of 10.
#include <uv.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <optional>

#include "broker/agent_link.h"
#include "broker/connect.h"
#include "tests/e2e/e2e_util.h"
#include "tests/support/sshd_fixture.h"

namespace mproxy::e2e {
namespace {

using testing::SshdFixture;

constexpr int kCommands = 100;

// Collects one channel's stdout and its Exit.
class Collector : public broker::ChannelHandler {
 public:
  Collector(broker::AgentLink* link, int* remaining, uv_loop_t* loop)
      : link_(link), remaining_(remaining), loop_(loop) {}

  void set_channel(uint32_t channel) { channel_ = channel; }
  const std::string& out() const { return out_; }
  const std::optional<proto::Exit>& exit() const { return exit_; }
  const std::string& trouble() const { return trouble_; }

  void OnData(uint32_t fd, std::string_view bytes) override {
    if (fd == 1) out_.append(bytes);
    link_->Consume(channel_, fd, bytes.size());
  }
  void OnEof(uint32_t) override {}
  void OnWritable(uint32_t) override {}
  void OnExit(const proto::Exit& exit) override {
    exit_ = exit;
    Done();
  }
  void OnChannelError(const proto::ErrorMsg& err) override { trouble_ += err.text + "; "; }
  void OnLost(const Status& why) override {
    trouble_ += "lost: " + (why.ok() ? std::string("ok") : why.error().message());
    Done();
  }

 private:
  void Done() {
    if (--*remaining_ == 0) uv_stop(loop_);
  }

  broker::AgentLink* link_;
  int* remaining_;
  uv_loop_t* loop_;
  uint32_t channel_ = 0;
  std::string out_;
  std::optional<proto::Exit> exit_;
  std::string trouble_;
};

// Stops the loop if the commands hang: anti-hang only.
void StopOnTimeout(uv_timer_t* t) noexcept { uv_stop(t->loop); }

TEST_CASE("100 commands run at once over one connection and each reports its own result", "[e2e]") {
  auto f = SshdFixture::StartOrSkip();
  if (f->remote_dir().empty()) testing::Skip("the sshd fixture has no remote directory here");
  INFO("sshd log:\n" << f->LogTail(40));
  // A test binary has no agent-bundle beside it.
  setenv("MPROXY_AGENT_BUNDLE", BundleDir().c_str(), 1);

  broker::ConnectOptions co;
  co.target = f->alias();
  co.ssh_config = f->config_path();
  auto conn = broker::Connect(co);
  INFO("connect: " << (conn ? std::string("ok") : conn.error().message()));
  REQUIRE(conn.ok());

  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  uv_timer_t timer;
  uv_timer_init(&loop, &timer);
  int remaining = kCommands;
  std::vector<std::unique_ptr<Collector>> collectors;
  {
    broker::AgentLink link(&loop, std::move(conn->agent_stream), conn->label);
    std::string lost;
    link.Start([&](const proto::Hello&) { uv_stop(&loop); },
               [&](const Status& why) {
                 lost = why.ok() ? "closed" : why.error().message();
                 uv_stop(&loop);
               });
    uv_timer_start(&timer, StopOnTimeout, 30000, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    INFO("session lost: " << lost);
    REQUIRE(link.ready());

    // Each command prints its number, then waits until all 100 have started
    // (a barrier on files in the remote-only directory), then prints how many
    // it saw: only commands that truly run side by side can all see 100.
    const std::string barrier = f->remote_dir() + "/barrier";
    const std::string script =
        "mkdir -p \"$2\" && echo \"$1\" && : >\"$2/$1\" && i=0 && "
        "while [ \"$(ls \"$2\" | wc -l)\" -lt " +
        std::to_string(kCommands) +
        " ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; ls \"$2\" | wc -l; sleep 0.2";
    for (int n = 0; n < kCommands; ++n) {
      auto c = std::make_unique<Collector>(&link, &remaining, &loop);
      proto::Exec exec;
      exec.path = "sh";
      exec.argv = {"sh", "-c", script, "sh", std::to_string(n), barrier};
      exec.inherit_env = true;
      exec.fds = {{1, proto::FdSpec::kFromChild, false}, {2, proto::FdSpec::kFromChild, false}};
      auto ch = link.OpenExec(std::move(exec), c.get());
      REQUIRE(ch.ok());
      c->set_channel(*ch);
      collectors.push_back(std::move(c));
    }
    uv_timer_start(&timer, StopOnTimeout, 120000, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(remaining == 0);
    for (int n = 0; n < kCommands; ++n) {
      const Collector& c = *collectors[n];
      INFO("command " << n << ": " << c.trouble());
      REQUIRE(c.exit().has_value());
      CHECK(c.exit()->code == std::optional<int32_t>(0));
      CHECK(!c.exit()->signal.has_value());
      CHECK(c.exit()->error == "");
      CHECK(c.out() == std::to_string(n) + "\n" + std::to_string(kCommands) + "\n");
    }
    link.Shutdown(Ok());
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
  conn->transport.reset();

  // All of it went over one SSH connection: one login in sshd's log.
  CHECK(CountOf(ReadFile(f->log_path()), "Accepted publickey") == 1);
}

}  // namespace
}  // namespace mproxy::e2e
