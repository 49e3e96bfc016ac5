// FsClient across a reconnect: two AgentLinks over in-memory streams, each
// with a Mux playing the agent. A handle carries the link it was opened on;
// once the client moved to a new link, an old handle fails with EIO without
// reaching the new agent (which may have given the same id to another file),
// releasing it succeeds, and handles of the new link work.
#include "broker/fs_client.h"

#include <uv.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proto/fs.h"
#include "proto/hello.h"
#include "proto/mux.h"

namespace mproxy::broker {
namespace {

constexpr uint64_t kGenerationOne = uint64_t{1} << 40;

// The agent's end: a Mux that records the file requests it receives.
class FakeAgent : public proto::MuxDelegate {
 public:
  FakeAgent() : mux_(this, proto::MakeHello("fake-agent", {"fs"})) {}

  void OnHello(const proto::Hello&, uint32_t) override {}
  void OnMessage(proto::Message&& m) override {
    if (auto* r = std::get_if<proto::FsRequest>(&m)) requests.push_back(std::move(*r));
  }
  void OnData(uint32_t, uint32_t, std::string_view) override {}
  void OnEof(uint32_t, uint32_t) override {}
  void OnWritable(uint32_t, uint32_t) override {}

  proto::Mux& mux() { return mux_; }
  std::vector<proto::FsRequest> requests;

 private:
  proto::Mux mux_;
};

// A ByteStream whose far end is a FakeAgent, pumped by the test.
class FakeStream : public ByteStream {
 public:
  explicit FakeStream(FakeAgent* agent) : agent_(agent) {}
  void Start(Callbacks callbacks) override { cb_ = std::move(callbacks); }
  void Send(std::string bytes) override { REQUIRE(agent_->mux().Feed(bytes).ok()); }
  void Close() override {}
  // Hands the agent's queued output to the link.
  void Deliver() {
    std::string out;
    agent_->mux().TakeOutput(&out, 1 << 20);
    if (!out.empty() && cb_.on_data) cb_.on_data(out);
  }

 private:
  FakeAgent* agent_;
  Callbacks cb_;
};

struct Side {
  FakeAgent agent;
  FakeStream* stream = nullptr;  // owned by link
  std::unique_ptr<AgentLink> link;
};

void Turn(uv_loop_t* loop, Side& side) {
  for (int i = 0; i < 5; ++i) {
    uv_run(loop, UV_RUN_NOWAIT);
    side.stream->Deliver();
  }
  uv_run(loop, UV_RUN_NOWAIT);
}

void Connect(uv_loop_t* loop, Side& side) {
  auto stream = std::make_unique<FakeStream>(&side.agent);
  side.stream = stream.get();
  side.link = std::make_unique<AgentLink>(loop, std::move(stream), "test-host");
  side.link->Start([](const proto::Hello&) {}, [](const Status&) {});
  Turn(loop, side);
  REQUIRE(side.link->ready());
}

// The agent answers its latest request with `reply` (its id filled in).
void Answer(uv_loop_t* loop, Side& side, proto::FsReply reply) {
  REQUIRE_FALSE(side.agent.requests.empty());
  reply.id = side.agent.requests.back().id;
  REQUIRE(side.agent.mux().Send(reply).ok());
  Turn(loop, side);
}

proto::FsReply OpenReply(uint64_t fh) {
  proto::FsReply r;
  r.fields[1] = fh;
  return r;
}

uint64_t FhOf(const proto::FsReply& r) {
  auto it = r.fields.find(1);
  REQUIRE(it != r.fields.end());
  return std::get<uint64_t>(it->second);
}

TEST_CASE("file handles from before a reconnect fail with EIO and never reach the new agent",
          "[broker]") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    Side first, second;
    Connect(&loop, first);
    Connect(&loop, second);
    FsClient client(&loop, first.link.get());
    std::optional<proto::FsReply> got;
    auto keep = [&got](proto::FsReply r) { got = std::move(r); };

    // Opened on the first link: the handle is the agent's own id.
    proto::FsOpenRequest open;
    open.path = "/w/file";
    client.Submit(open, keep);
    Turn(&loop, first);
    REQUIRE(first.agent.requests.size() == 1);
    Answer(&loop, first, OpenReply(7));
    REQUIRE(got);
    REQUIRE(got->err == 0);
    const uint64_t old_fh = FhOf(*got);
    CHECK(old_fh == 7);

    client.SetLink(second.link.get());

    // The old handle: EIO at once, nothing sent to the new agent.
    proto::FsReadRequest read;
    read.fh = old_fh;
    read.size = 4096;
    got.reset();
    client.Submit(read, keep);
    Turn(&loop, second);
    REQUIRE(got);
    CHECK(got->err == EIO);
    // Releasing it succeeds (close() must not fail), also without a message.
    proto::FsReleaseRequest release;
    release.fh = old_fh;
    got.reset();
    client.Submit(release, keep);
    Turn(&loop, second);
    REQUIRE(got);
    CHECK(got->err == 0);
    CHECK(second.agent.requests.empty());

    // The new agent gives out the same id: it comes back tagged, and goes
    // out untagged.
    client.Submit(open, keep);
    Turn(&loop, second);
    REQUIRE(second.agent.requests.size() == 1);
    got.reset();
    Answer(&loop, second, OpenReply(7));
    REQUIRE(got);
    const uint64_t new_fh = FhOf(*got);
    CHECK(new_fh == (7 | kGenerationOne));
    read.fh = new_fh;
    client.Submit(read, [](proto::FsReply) {});
    Turn(&loop, second);
    REQUIRE(second.agent.requests.size() == 2);
    auto parsed = proto::ParseFsRequest(second.agent.requests.back());
    REQUIRE(parsed.ok());
    auto* sent = std::get_if<proto::FsReadRequest>(&*parsed);
    REQUIRE(sent != nullptr);
    CHECK(sent->fh == 7);
    // And the first agent never saw anything after the move.
    CHECK(first.agent.requests.size() == 1);

    client.Close();
    first.link->Shutdown(Ok());
    second.link->Shutdown(Ok());
    uv_run(&loop, UV_RUN_NOWAIT);
  }
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace
}  // namespace mproxy::broker
