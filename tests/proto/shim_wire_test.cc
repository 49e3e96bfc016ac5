// The shim socket's frames: round trips, damaged and hostile input, and the
// stream decoder fed in every way bytes can arrive.
#include "proto/shim_wire.h"

#include <catch2/catch.hpp>
#include <random>

#include "tests/fakes/shim_samples.h"

namespace mproxy::proto::shim {
namespace {

std::vector<Message> Samples() { return testing::ShimSampleMessages(); }

std::string Body(const Message& m) { return Encode(m).substr(4); }

std::string U32(uint32_t v) {
  return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
}
std::string Str(const std::string& s) { return U32(static_cast<uint32_t>(s.size())) + s; }

// Everything a Decoder yields for `stream` fed in pieces of `sizes` (cycled).
std::vector<Message> DecodeStream(const std::string& stream, const std::vector<size_t>& sizes) {
  Decoder d;
  std::vector<Message> got;
  size_t i = 0;
  for (size_t off = 0; off < stream.size(); ++i) {
    size_t n = std::min(sizes[i % sizes.size()], stream.size() - off);
    d.Feed(std::string_view(stream).substr(off, n));
    off += n;
    for (;;) {
      auto m = d.Next();
      REQUIRE(m.ok());
      if (!m->has_value()) break;
      got.push_back(std::move(**m));
    }
  }
  REQUIRE(d.buffered() == 0);
  return got;
}

std::string ErrorOf(std::string_view body) {
  auto m = DecodeBody(body);
  REQUIRE_FALSE(m.ok());
  return m.error().message();
}

TEST_CASE("every shim message survives a round trip", "[proto]") {
  for (const Message& m : Samples()) {
    std::string frame = Encode(m);
    INFO(TypeName(TypeOf(m)));
    REQUIRE(frame.size() >= 5);
    REQUIRE(frame.substr(0, 4) == U32(static_cast<uint32_t>(frame.size() - 4)));
    REQUIRE(static_cast<uint8_t>(frame[4]) == static_cast<uint8_t>(TypeOf(m)));
    auto back = DecodeBody(std::string_view(frame).substr(4));
    REQUIRE(back.ok());
    REQUIRE(*back == m);
  }
}

TEST_CASE("EncodeTo appends and Encode gives the same bytes", "[proto]") {
  std::string out = "prefix";
  EncodeTo(Resize{1, 2}, &out);
  REQUIRE(out == "prefix" + Encode(Resize{1, 2}));
  REQUIRE(Encode(Resize{1, 2}) == U32(9) + "\x05" + U32(1) + U32(2));
}

TEST_CASE("the layout of a request is the one the header documents", "[proto]") {
  Request r;
  r.exe = "/s/ls";
  r.argv = {"ls"};
  r.env = {"A=b"};
  r.cwd = "/";
  r.fds = {{1, Fd::Mode::kTerminal, false}};
  r.term = "vt100";
  r.rows = 24;
  r.cols = 80;
  std::string body = std::string("\x01") + U32(kVersion) + Str("/s/ls") + U32(1) + Str("ls") +
                     U32(1) + Str("A=b") + Str("/") + U32(1) + U32(1) + "\x01" +
                     std::string(1, '\0') + Str("vt100") + U32(24) + U32(80);
  REQUIRE(Body(r) == body);
  REQUIRE(Body(Exit{3, std::string("KILL"), true, "m"}) ==
          std::string("\x11\x01") + U32(3) + Str("KILL") + "\x01" + Str("m"));
  REQUIRE(Body(Output{2, "xy"}) == std::string("\x10") + U32(2) + "xy");
}

TEST_CASE("every truncation of every shim message is an error or a shorter message", "[proto]") {
  for (const Message& m : Samples()) {
    std::string body = Body(m);
    INFO(TypeName(TypeOf(m)));
    for (size_t len = 0; len < body.size(); ++len) {
      auto got = DecodeBody(std::string_view(body).substr(0, len));
      if (!got.ok()) continue;
      // Input and Output bytes run to the end of the frame, so cutting them
      // short is still a well-formed message, with fewer bytes.
      INFO("length " << len);
      if (auto* in = std::get_if<Input>(&*got)) {
        REQUIRE(std::get<Input>(m).bytes.substr(0, in->bytes.size()) == in->bytes);
      } else if (auto* out = std::get_if<Output>(&*got)) {
        REQUIRE(out->fd == std::get<Output>(m).fd);
        REQUIRE(std::get<Output>(m).bytes.substr(0, out->bytes.size()) == out->bytes);
      } else {
        FAIL("a truncated " << TypeName(TypeOf(m)) << " decoded");
      }
    }
  }
}

TEST_CASE("a truncated frame only makes the decoder wait for more bytes", "[proto]") {
  for (const Message& m : Samples()) {
    std::string frame = Encode(m);
    for (size_t len = 0; len < frame.size(); ++len) {
      Decoder d;
      d.Feed(std::string_view(frame).substr(0, len));
      auto got = d.Next();
      REQUIRE(got.ok());
      REQUIRE_FALSE(got->has_value());
      REQUIRE(d.buffered() == len);
    }
  }
}

TEST_CASE("an unknown message type is an error naming it", "[proto]") {
  for (int t : {0, 6, 15, 19, 255}) {
    REQUIRE(ErrorOf(std::string(1, static_cast<char>(t))) ==
            "shim frame: unknown message type " + std::to_string(t));
  }
  REQUIRE(ErrorOf("") == "shim frame: empty body, no message type");
}

TEST_CASE("bad enum and flag values are errors naming the field", "[proto]") {
  Request r;
  r.fds = {{0, Fd::Mode::kPassed, true}, {1, Fd::Mode::kPassed, false}};
  std::string body = Body(r);
  // The fd entries are the 12 bytes before term (4), rows (4) and cols (4).
  size_t fd1 = body.size() - 12 - 6;
  std::string bad_mode = body;
  bad_mode[fd1 + 4] = 2;
  REQUIRE(ErrorOf(bad_mode) == "shim Request: fds[1].mode: unknown mode 2");
  std::string bad_dir = body;
  bad_dir[fd1 + 5] = 7;
  REQUIRE(ErrorOf(bad_dir) == "shim Request: fds[1].to_child: bad value 7 (0 or 1)");

  std::string exit = Body(Exit{1, std::nullopt, false, ""});
  std::string bad_kind = exit;
  bad_kind[1] = 2;
  REQUIRE(ErrorOf(bad_kind) == "shim Exit: kind: unknown kind 2 (0 code, 1 signal)");
  std::string bad_core = exit;
  bad_core[1 + 1 + 4 + 4] = 3;
  REQUIRE(ErrorOf(bad_core) == "shim Exit: core: bad value 3 (0 or 1)");
  REQUIRE(ErrorOf(Body(Exit{256, std::nullopt, false, ""})) ==
          "shim Exit: code: 256 is not an exit status (0..255)");
  REQUIRE(ErrorOf(Body(Exit{0, std::string(), false, ""})) ==
          "shim Exit: signal: empty name with kind 1 (signal)");
  // Stopped: a signal name, never empty.
  REQUIRE(ErrorOf(std::string("\x12\0\0\0\0", 5)) == "shim Stopped: signal: empty name");
  REQUIRE(ErrorOf(std::string("\x12\0\0", 3)) == "shim Stopped: signal: needs 4 bytes, 2 left");
  std::string code_with_name = std::string("\x11\x00", 2) + U32(0) + Str("TERM") + '\0' + Str("");
  REQUIRE(ErrorOf(code_with_name) == "shim Exit: signal: a name with kind 0 (code)");
}

TEST_CASE("over-long lengths and counts are refused before anything is allocated", "[proto]") {
  std::string head = std::string("\x01") + U32(kVersion) + Str("/x") + U32(3) + Str("a") + Str("b");
  REQUIRE(ErrorOf(head + U32(4000000) + "0123456789ab") ==
          "shim Request: argv[2]: length 4000000 exceeds the 12 bytes left");
  REQUIRE(
      ErrorOf(std::string("\x01") + U32(kVersion) + Str("/x") + U32(1000000) + "abcdefghijkl") ==
      "shim Request: argv: 1000000 entries cannot fit in the 12 bytes left");
  REQUIRE(ErrorOf(std::string("\x01") + U32(kVersion) + U32(0xffffffff)) ==
          "shim Request: exe: length 4294967295 exceeds the 0 bytes left");
  std::string no_fds = Body(Request{});
  // fds count sits before term (4), rows (4) and cols (4).
  std::string many_fds = no_fds;
  many_fds.replace(many_fds.size() - 16, 4, U32(3));
  REQUIRE(ErrorOf(many_fds) == "shim Request: fds: 3 entries cannot fit in the 12 bytes left");
  REQUIRE(ErrorOf(std::string("\x04") + U32(5) + "INT") ==
          "shim Signal: name: length 5 exceeds the 3 bytes left");
  REQUIRE(ErrorOf(std::string("\x05") + U32(5)) == "shim Resize: cols: needs 4 bytes, 0 left");
  REQUIRE(ErrorOf(std::string("\x10\x00\x00", 3)) == "shim Output: fd: needs 4 bytes, 2 left");
}

TEST_CASE("bytes after a message are an error", "[proto]") {
  REQUIRE(ErrorOf(Body(Resize{1, 2}) + "x") == "shim Resize: 1 trailing byte");
  REQUIRE(ErrorOf(Body(InputEof{}) + "xy") == "shim InputEof: 2 trailing bytes");
  REQUIRE(ErrorOf(Body(Signal{"INT"}) + "xyz") == "shim Signal: 3 trailing bytes");
  REQUIRE(ErrorOf(Body(Exit{}) + std::string(1, '\0')) == "shim Exit: 1 trailing byte");
  REQUIRE(ErrorOf(Body(Request{}) + "!") == "shim Request: 1 trailing byte");
}

TEST_CASE("a request of another version decodes to just its version", "[proto]") {
  std::string body = std::string("\x01") + U32(kVersion + 1) + "whatever layout v2 has";
  auto m = DecodeBody(body);
  REQUIRE(m.ok());
  Request want;
  want.version = kVersion + 1;
  REQUIRE(std::get<Request>(*m) == want);
}

TEST_CASE("a frame length of zero is refused", "[proto]") {
  Decoder d;
  d.Feed(U32(0) + "\x03");
  auto m = d.Next();
  REQUIRE_FALSE(m.ok());
  REQUIRE(m.error().message() == "shim frame: length 0 (a frame holds at least its type byte)");
}

TEST_CASE("a frame length over the maximum is refused as soon as the header arrives", "[proto]") {
  Decoder d;
  d.Feed(U32(kMaxFrame + 1));
  auto m = d.Next();
  REQUIRE_FALSE(m.ok());
  REQUIRE(m.error().message() == "shim frame: length 8388609 exceeds the maximum of 8388608");
  REQUIRE(d.buffered() == 0);
  // The stream stays dead: nothing more is buffered or decoded.
  d.Feed(Encode(InputEof{}));
  REQUIRE(d.buffered() == 0);
  REQUIRE_FALSE(d.Next().ok());
}

TEST_CASE("a frame of exactly the maximum length is accepted", "[proto]") {
  std::string frame = Encode(Input{std::string(kMaxFrame - 1, 'i')});
  REQUIRE(frame.size() == kMaxFrame + 4);
  Decoder d;
  d.Feed(frame);
  auto m = d.Next();
  REQUIRE(m.ok());
  REQUIRE(m->has_value());
  REQUIRE(std::get<Input>(**m).bytes.size() == kMaxFrame - 1);
}

TEST_CASE("a bad body ends the stream with the body's error", "[proto]") {
  Decoder d;
  d.Feed(Encode(Signal{"INT"}) + U32(1) + "\x63" + Encode(InputEof{}));
  auto first = d.Next();
  REQUIRE(first.ok());
  REQUIRE(**first == Message(Signal{"INT"}));
  auto second = d.Next();
  REQUIRE_FALSE(second.ok());
  REQUIRE(second.error().message() == "shim frame: unknown message type 99");
  REQUIRE_FALSE(d.Next().ok());
}

TEST_CASE("the decoder reassembles frames fed byte by byte and in random chunks", "[proto]") {
  std::string stream;
  std::vector<Message> samples = Samples();
  for (const Message& m : samples) EncodeTo(m, &stream);
  REQUIRE(DecodeStream(stream, {1}) == samples);
  REQUIRE(DecodeStream(stream, {stream.size()}) == samples);
  std::mt19937 rng(20240611);
  for (int round = 0; round < 50; ++round) {
    std::vector<size_t> sizes;
    for (int i = 0; i < 16; ++i)
      sizes.push_back(std::uniform_int_distribution<size_t>(1, 300)(rng));
    REQUIRE(DecodeStream(stream, sizes) == samples);
  }
}

TEST_CASE("type names cover every message", "[proto]") {
  std::vector<std::string> names;
  for (const Message& m : Samples()) names.push_back(TypeName(TypeOf(m)));
  REQUIRE(names == std::vector<std::string>{"Request", "Request", "Input", "Input", "InputEof",
                                            "Signal", "Resize", "Output", "Output", "Exit",
                                            "Exit", "Stopped"});
  REQUIRE(std::string(TypeName(static_cast<Type>(99))) == "unknown");
}

}  // namespace
}  // namespace mproxy::proto::shim
