// The multiplexer over an in-memory transport pair.
#include "proto/mux.h"

#include <catch2/catch.hpp>

#include "proto/cbor.h"
#include "proto/codec.h"
#include "proto/hello.h"
#include "tests/fakes/mux_pair.h"

using namespace mproxy;
using namespace mproxy::proto;
using mproxy::testing::Endpoint;
using mproxy::testing::MuxPair;
using mproxy::testing::StreamId;

namespace {

std::vector<Message> Frames(std::string_view bytes) {
  FrameDecoder d;
  d.Feed(bytes);
  std::vector<Message> out;
  for (;;) {
    auto f = d.Next();
    REQUIRE(f.ok());
    if (!f->has_value()) return out;
    auto m = DecodeMessage(**f);
    REQUIRE(m.ok());
    out.push_back(std::move(*m));
  }
}

// Distinct, position-dependent bytes so cross-talk or reordering shows.
std::string Pattern(uint32_t seed, size_t n) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

Exec OpenExec(uint32_t channel) {
  Exec e;
  e.channel = channel;
  e.path = "cat";
  e.argv = {"cat"};
  return e;
}

struct NullDelegate : MuxDelegate {
  void OnHello(const Hello&, uint32_t) override {}
  void OnMessage(Message&& m) override { messages.push_back(std::move(m)); }
  void OnData(uint32_t, uint32_t, std::string_view) override {}
  void OnEof(uint32_t, uint32_t) override {}
  void OnWritable(uint32_t, uint32_t) override {}
  std::vector<Message> messages;
};

std::string HelloFrame() {
  std::string out;
  REQUIRE(EncodeFrame(MakeHello("raw", {}), &out).ok());
  return out;
}

}  // namespace

TEST_CASE("both sides receive the peer's Hello and agree on the version", "[proto]") {
  MuxPair p;
  REQUIRE(p.Pump().ok());
  REQUIRE(p.a.peer_hello->program_version == "test-b");
  REQUIRE(p.b.peer_hello->program_version == "test-a");
  REQUIRE(p.a.version == kProtocolVersion);
  REQUIRE(p.b.mux().version() == kProtocolVersion);
}

TEST_CASE("a version mismatch fails with both versions and tells the peer", "[proto]") {
  NullDelegate da, db;
  Hello future = MakeHello("9.0", {});
  future.versions = {7, 8};
  Mux a(&da, MakeHello("0.1", {}));
  Mux b(&db, future);
  std::string out;
  b.TakeOutput(&out, 1 << 20);
  auto s = a.Feed(out);
  REQUIRE_FALSE(s.ok());
  REQUIRE(s.error().message() ==
          "no common protocol version: this side speaks 1, the peer (mproxy 9.0) speaks 7, 8");
  // a's Hello, then an Error explaining the refusal.
  std::string back;
  a.TakeOutput(&back, 1 << 20);
  auto frames = Frames(back);
  REQUIRE(frames.size() == 2);
  REQUIRE(std::get<ErrorMsg>(frames[1]).code == ErrorMsg::kVersion);
  REQUIRE_THAT(std::get<ErrorMsg>(frames[1]).text, Catch::Contains("speaks 7, 8"));
  // The session stays failed.
  REQUIRE_FALSE(a.Feed("").ok());
}

TEST_CASE("a first frame other than Hello is refused", "[proto]") {
  NullDelegate d;
  Mux m(&d, MakeHello("0.1", {}));
  std::string ping;
  REQUIRE(EncodeFrame(Ping{1}, &ping).ok());
  auto s = m.Feed(ping);
  REQUIRE_FALSE(s.ok());
  REQUIRE(s.error().message() == "expected Hello as the first frame, got Ping");
}

TEST_CASE("200 concurrent channels carry their own bytes both ways", "[proto]") {
  MuxPair p;
  constexpr uint32_t kChannels = 200;
  for (uint32_t c = 1; c <= kChannels; ++c) {
    REQUIRE(p.a.mux().Send(OpenExec(c)).ok());
    p.a.QueueSend(c, 0, Pattern(c, 3000 + c * 97), true);
  }
  REQUIRE(p.Pump(/*chunk=*/977).ok());
  REQUIRE(p.b.messages.size() == kChannels);
  for (uint32_t c = 1; c <= kChannels; ++c) {
    // b answers on two streams of the same channel.
    p.b.QueueSend(c, 1, Pattern(c + 1000, 5000 + c * 31), true);
    p.b.QueueSend(c, 2, Pattern(c + 2000, 100), true);
  }
  REQUIRE(p.Pump(/*chunk=*/4093).ok());
  for (uint32_t c = 1; c <= kChannels; ++c) {
    INFO("channel " << c);
    REQUIRE(p.b.received[{c, 0}] == Pattern(c, 3000 + c * 97));
    REQUIRE(p.a.received[{c, 1}] == Pattern(c + 1000, 5000 + c * 31));
    REQUIRE(p.a.received[{c, 2}] == Pattern(c + 2000, 100));
    REQUIRE(p.b.eofs.count({c, 0}) == 1);
    REQUIRE(p.a.eofs.count({c, 1}) == 1);
    REQUIRE(p.a.eofs.count({c, 2}) == 1);
  }
}

TEST_CASE("a stream whose reader stopped does not delay the others", "[proto]") {
  MuxPair p;
  for (uint32_t c = 1; c <= 5; ++c) REQUIRE(p.a.mux().Send(OpenExec(c)).ok());
  REQUIRE(p.Pump().ok());
  p.a.Pause({1, 1});
  const std::string stuck = Pattern(1, 4 << 20);
  p.b.QueueSend(1, 1, stuck, true);
  for (uint32_t c = 2; c <= 5; ++c) p.b.QueueSend(c, 1, Pattern(c, 1 << 20), true);
  REQUIRE(p.Pump(0, 64 * 1024).ok());
  for (uint32_t c = 2; c <= 5; ++c) {
    REQUIRE(p.a.received[{c, 1}] == Pattern(c, 1 << 20));
    REQUIRE(p.a.eofs.count({c, 1}) == 1);
  }
  // The stopped stream got exactly its window, no more, and the sender holds
  // at most one send buffer of it.
  REQUIRE(p.a.received[{1, 1}].size() == kInitialWindow);
  REQUIRE(p.a.max_unconsumed[{1, 1}] == kInitialWindow);
  REQUIRE(p.b.mux().SendCredit(1, 1) == 0);
  REQUIRE(p.b.mux().Buffered(1, 1) <= kSendBufferLimit);
  // Resuming drains it completely and in order.
  p.a.Resume({1, 1});
  for (int i = 0; i < 100 && p.a.eofs.count({1, 1}) == 0; ++i) {
    REQUIRE(p.Pump().ok());
    p.a.Resume({1, 1});
  }
  REQUIRE(p.a.received[{1, 1}] == stuck);
  REQUIRE(p.a.eofs.count({1, 1}) == 1);
  REQUIRE(p.a.max_unconsumed[{1, 1}] <= kInitialWindow);
}

TEST_CASE("Write pushes back when the send buffer is full and signals room later", "[proto]") {
  MuxPair p;
  REQUIRE(p.a.mux().Send(OpenExec(1)).ok());
  std::string big(kSendBufferLimit + 1000, 'w');
  REQUIRE(p.a.mux().Write(1, 0, big) == kSendBufferLimit);
  REQUIRE(p.a.mux().WriteRoom(1, 0) == 0);
  REQUIRE(p.a.writable_events == 0);
  REQUIRE(p.Pump().ok());
  REQUIRE(p.a.writable_events == 1);
  REQUIRE(p.a.mux().WriteRoom(1, 0) == kSendBufferLimit);
}

TEST_CASE("control frames go out ahead of queued data", "[proto]") {
  MuxPair p;
  REQUIRE(p.Pump().ok());
  REQUIRE(p.a.mux().Send(OpenExec(1)).ok());
  p.a.QueueSend(1, 0, std::string(200000, 'd'), false);
  std::string first;
  p.a.mux().TakeOutput(&first, 64 * 1024);  // leaves data queued
  REQUIRE(p.a.mux().Send(Signal{1, "INT"}).ok());
  std::string second;
  p.a.mux().TakeOutput(&second, 64 * 1024);
  auto frames = Frames(second);
  REQUIRE_FALSE(frames.empty());
  REQUIRE(std::holds_alternative<Signal>(frames[0]));
  REQUIRE(std::holds_alternative<Data>(frames[1]));
}

TEST_CASE("ready streams take turns one chunk at a time", "[proto]") {
  MuxPair p;
  REQUIRE(p.Pump().ok());
  REQUIRE(p.a.mux().Send(OpenExec(1)).ok());
  p.a.QueueSend(1, 0, std::string(200000, 'a'), false);
  p.a.QueueSend(1, 3, std::string(200000, 'b'), false);
  std::string out;
  p.a.mux().TakeOutput(&out, 4 * kMaxDataChunk);
  std::vector<uint32_t> order;
  for (auto& m : Frames(out)) {
    if (auto* d = std::get_if<Data>(&m)) {
      REQUIRE(d->bytes.size() <= kMaxDataChunk);
      order.push_back(d->fd);
    }
  }
  REQUIRE(order == std::vector<uint32_t>{0, 3, 0, 3});
}

TEST_CASE("a message sent after data leaves after that channel's data and Eof", "[proto]") {
  MuxPair p;
  REQUIRE(p.Pump().ok());
  REQUIRE(p.b.mux().Send(OpenExec(4)).ok());
  p.b.QueueSend(4, 1, std::string(600000, 'o'), true);
  Exit e;
  e.channel = 4;
  e.code = 3;
  REQUIRE(p.b.mux().SendAfterData(4, e).ok());
  REQUIRE(p.b.mux().Send(Pong{9}).ok());  // plain control: goes first
  std::vector<Message> seen;
  for (int i = 0; i < 1000 && p.b.mux().HasOutput(); ++i) {
    std::string out;
    p.b.mux().TakeOutput(&out, 100000);
    for (auto& m : Frames(out)) seen.push_back(std::move(m));
    REQUIRE(p.a.mux().Feed(out).ok());
    std::string back;
    p.a.mux().TakeOutput(&back, 1 << 20);
    REQUIRE(p.b.mux().Feed(back).ok());
  }
  REQUIRE(std::holds_alternative<Exec>(seen[0]));
  REQUIRE(std::holds_alternative<Pong>(seen[1]));
  REQUIRE(std::holds_alternative<Exit>(seen.back()));
  REQUIRE(std::holds_alternative<Eof>(seen[seen.size() - 2]));
  REQUIRE(p.a.received[{4, 1}].size() == 600000);
}

TEST_CASE("an unknown message type is answered with Error and the session goes on", "[proto]") {
  NullDelegate d;
  Mux m(&d, MakeHello("0.1", {}));
  std::string in = HelloFrame();
  size_t start = BeginFrame(&in);
  CborWriter w(&in);
  w.ArrayHeader(2);
  w.Uint(321);
  w.MapHeader(0);
  REQUIRE(FinishFrame(&in, start).ok());
  REQUIRE(EncodeFrame(Ping{5}, &in).ok());
  REQUIRE(m.Feed(in).ok());
  REQUIRE(d.messages.size() == 1);
  REQUIRE(std::get<Ping>(d.messages[0]).id == 5);
  std::string out;
  m.TakeOutput(&out, 1 << 20);
  auto frames = Frames(out);
  REQUIRE(frames.size() == 2);
  const auto& err = std::get<ErrorMsg>(frames[1]);
  REQUIRE(err.code == ErrorMsg::kUnknownMessage);
  REQUIRE(err.text == "unknown message type 321");
}

TEST_CASE("data beyond the granted credit ends the session", "[proto]") {
  NullDelegate d;
  Mux m(&d, MakeHello("0.1", {}));
  std::string in = HelloFrame();
  REQUIRE(EncodeFrame(OpenExec(2), &in).ok());
  std::string chunk(kMaxDataChunk, 'x');
  for (uint64_t sent = 0; sent <= kInitialWindow; sent += chunk.size()) {
    REQUIRE(EncodeDataFrame(2, 0, chunk, &in).ok());
  }
  auto s = m.Feed(in);
  REQUIRE_FALSE(s.ok());
  REQUIRE(s.error().message() ==
          "peer exceeded its credit on channel 2 fd 0 (65536 bytes, 0 allowed)");
}

TEST_CASE("a Hello's window is the credit the peer may use on every stream", "[proto]") {
  constexpr uint32_t kGranted = 1024 * 1024;
  NullDelegate d;
  Mux m(&d, MakeHello("0.1", {}, kGranted));
  std::string in = HelloFrame();
  REQUIRE(EncodeFrame(OpenExec(2), &in).ok());
  std::string chunk(kMaxDataChunk, 'x');
  // Four times the least window fits; one more byte does not.
  for (uint64_t sent = 0; sent < kGranted; sent += chunk.size()) {
    REQUIRE(EncodeDataFrame(2, 0, chunk, &in).ok());
  }
  REQUIRE(m.Feed(in).ok());
  in.clear();
  REQUIRE(EncodeDataFrame(2, 0, "y", &in).ok());
  auto s = m.Feed(in);
  REQUIRE_FALSE(s.ok());
  REQUIRE(s.error().message() == "peer exceeded its credit on channel 2 fd 0 (1 bytes, 0 allowed)");
}

TEST_CASE("a sender uses the window the peer's Hello grants, also on streams opened before it",
          "[proto]") {
  NullDelegate d;
  Mux m(&d, MakeHello("0.1", {}));
  REQUIRE(m.Send(OpenExec(1)).ok());
  REQUIRE(m.Write(1, 0, "early") == 5);
  // Before the peer's Hello only the least window may be used.
  REQUIRE(m.SendCredit(1, 0) == kInitialWindow);
  std::string out;
  m.TakeOutput(&out, 1 << 20);
  REQUIRE(m.SendCredit(1, 0) == kInitialWindow - 5);

  std::string in;
  REQUIRE(EncodeFrame(MakeHello("peer", {}, 3 * 1024 * 1024), &in).ok());
  REQUIRE(m.Feed(in).ok());
  REQUIRE(m.SendCredit(1, 0) == 3 * 1024 * 1024 - 5);
  REQUIRE(m.Send(OpenExec(2)).ok());
  REQUIRE(m.SendCredit(2, 1) == 3 * 1024 * 1024);
}

TEST_CASE("a Hello's window counts as at least the least window and at most the largest",
          "[proto]") {
  for (auto [granted, expected] : {std::pair<uint32_t, uint64_t>{0, kInitialWindow},
                                   {1000, kInitialWindow},
                                   {UINT32_MAX, kMaxInitialWindow}}) {
    INFO("granted " << granted);
    NullDelegate d;
    Mux m(&d, MakeHello("0.1", {}));
    std::string in;
    REQUIRE(EncodeFrame(MakeHello("peer", {}, granted), &in).ok());
    REQUIRE(m.Feed(in).ok());
    REQUIRE(m.Send(OpenExec(1)).ok());
    REQUIRE(m.SendCredit(1, 0) == expected);
  }
}

TEST_CASE("a receiver granting a larger window returns credit every half of it", "[proto]") {
  constexpr uint32_t kGranted = 1024 * 1024;
  NullDelegate d;
  Mux m(&d, MakeHello("0.1", {}, kGranted));
  std::string in = HelloFrame();
  REQUIRE(EncodeFrame(OpenExec(2), &in).ok());
  std::string chunk(kMaxDataChunk, 'z');
  for (uint64_t sent = 0; sent < kGranted / 2; sent += chunk.size()) {
    REQUIRE(EncodeDataFrame(2, 0, chunk, &in).ok());
  }
  REQUIRE(m.Feed(in).ok());
  std::string out;
  m.TakeOutput(&out, 1 << 20);  // our Hello
  out.clear();
  m.Consume(2, 0, kGranted / 2 - 1);
  m.TakeOutput(&out, 1 << 20);
  REQUIRE(out.empty());  // the least window's half is long past, ours is not
  m.Consume(2, 0, 1);
  m.TakeOutput(&out, 1 << 20);
  auto frames = Frames(out);
  REQUIRE(frames.size() == 1);
  REQUIRE(std::get<Window>(frames[0]).credit == kGranted / 2);
}

TEST_CASE("frames for channels that do not exist are dropped", "[proto]") {
  NullDelegate d;
  Mux m(&d, MakeHello("0.1", {}));
  std::string in = HelloFrame();
  REQUIRE(EncodeDataFrame(77, 1, "late", &in).ok());
  REQUIRE(EncodeFrame(Eof{77, 1}, &in).ok());
  REQUIRE(EncodeFrame(Window{77, 1, 10}, &in).ok());
  REQUIRE(m.Feed(in).ok());
  REQUIRE(m.dropped_frames() == 3);
  REQUIRE(m.channel_count() == 0);
}

TEST_CASE("Close removes the channel on both sides", "[proto]") {
  MuxPair p;
  REQUIRE(p.a.mux().Send(OpenExec(5)).ok());
  REQUIRE(p.Pump().ok());
  REQUIRE(p.b.mux().HasChannel(5));
  REQUIRE(p.a.mux().Send(Close{5}).ok());
  REQUIRE_FALSE(p.a.mux().HasChannel(5));
  REQUIRE(p.Pump().ok());
  REQUIRE_FALSE(p.b.mux().HasChannel(5));
  REQUIRE(std::holds_alternative<Close>(p.b.messages.back()));
}

TEST_CASE("a second Exec on an open channel is refused with an Error", "[proto]") {
  MuxPair p;
  REQUIRE(p.a.mux().Send(OpenExec(5)).ok());
  REQUIRE(p.Pump().ok());
  // Bypass a's own table by feeding b a raw duplicate.
  std::string dup;
  REQUIRE(EncodeFrame(OpenExec(5), &dup).ok());
  REQUIRE(p.b.mux().Feed(dup).ok());
  REQUIRE(p.Pump().ok());
  REQUIRE(p.b.messages.size() == 1);
  const auto& err = std::get<ErrorMsg>(p.a.messages.back());
  REQUIRE(err.code == ErrorMsg::kChannel);
  REQUIRE(err.text == "channel 5 is already open");
}

TEST_CASE("a malformed frame fails the session and tells the peer", "[proto]") {
  NullDelegate d;
  Mux m(&d, MakeHello("0.1", {}));
  std::string in = HelloFrame() + std::string("\0\0\0\2\x82\x01", 6);  // [1, <missing>]
  auto s = m.Feed(in);
  REQUIRE_FALSE(s.ok());
  REQUIRE_THAT(s.error().message(), Catch::StartsWith("bad frame from peer: "));
  std::string out;
  m.TakeOutput(&out, 1 << 20);
  auto frames = Frames(out);
  REQUIRE(std::get<ErrorMsg>(frames.back()).code == ErrorMsg::kProtocol);
  REQUIRE_FALSE(m.Feed(HelloFrame()).ok());
}

TEST_CASE("Data, Eof and Window cannot be sent as control messages", "[proto]") {
  NullDelegate d;
  Mux m(&d, MakeHello("0.1", {}));
  auto s = m.Send(Data{1, 1, "x"});
  REQUIRE_FALSE(s.ok());
  REQUIRE(s.error().message() == "Mux::Send: Data goes through Write/WriteEof/Consume");
}
