// Framing: headers, the size limit, and reassembly from arbitrary chunks.
#include "proto/frame.h"

#include <catch2/catch.hpp>

using namespace mproxy::proto;

namespace {
std::string Frame(const std::string& payload) {
  std::string out;
  size_t start = BeginFrame(&out);
  out += payload;
  REQUIRE(FinishFrame(&out, start).ok());
  return out;
}
}  // namespace

TEST_CASE("a frame is a big-endian length then the payload", "[proto]") {
  REQUIRE(Frame("abc") == std::string("\0\0\0\3abc", 7));
  REQUIRE(Frame(std::string(0x10203, 'x')).substr(0, 4) == std::string("\0\1\2\3", 4));
}

TEST_CASE("frames split at every byte boundary reassemble", "[proto]") {
  std::string stream = Frame("first") + Frame("") + Frame(std::string(1000, 'z')) + Frame("last");
  for (size_t chunk = 1; chunk <= 7; ++chunk) {
    FrameDecoder d;
    std::vector<std::string> got;
    for (size_t off = 0; off < stream.size(); off += chunk) {
      d.Feed(std::string_view(stream).substr(off, chunk));
      for (;;) {
        auto f = d.Next();
        REQUIRE(f.ok());
        if (!f->has_value()) break;
        got.emplace_back(**f);
      }
    }
    REQUIRE(got == std::vector<std::string>{"first", "", std::string(1000, 'z'), "last"});
    REQUIRE(d.buffered() == 0);
  }
}

TEST_CASE("a length over the maximum is refused as soon as the header arrives", "[proto]") {
  FrameDecoder d;
  const std::string header("\x00\x10\x00\x01", 4);  // 1 MiB + 1; outlives Next()
  d.Feed(header);
  auto f = d.Next();
  REQUIRE_FALSE(f.ok());
  REQUIRE(f.error().message() == "frame: length 1048577 exceeds the maximum frame size of 1048576");
}

TEST_CASE("a frame of exactly the maximum size is accepted", "[proto]") {
  std::string big = Frame(std::string(kMaxFrameSize, 'm'));
  FrameDecoder d;
  d.Feed(big);
  auto f = d.Next();
  REQUIRE(f.ok());
  REQUIRE((*f)->size() == kMaxFrameSize);
}

TEST_CASE("encoding an oversized payload fails and leaves the buffer as it was", "[proto]") {
  std::string out = "keep";
  size_t start = BeginFrame(&out);
  out.append(kMaxFrameSize + 1, 'x');
  auto s = FinishFrame(&out, start);
  REQUIRE_FALSE(s.ok());
  REQUIRE_THAT(s.error().message(), Catch::Contains("exceeds the maximum frame size"));
  REQUIRE(out == "keep");
}

TEST_CASE("whole frames are returned in place; only a split frame is copied", "[proto]") {
  std::string stream = Frame("one") + Frame("two") + Frame(std::string(100, 'z'));
  FrameDecoder d;
  // The first chunk holds two whole frames and the start of the third.
  std::string_view chunk1 = std::string_view(stream).substr(0, 20);
  d.Feed(chunk1);
  auto a = d.Next();
  REQUIRE(a.ok());
  REQUIRE(**a == "one");
  REQUIRE((*a)->data() == chunk1.data() + kFrameHeaderSize);  // in place
  auto b = d.Next();
  REQUIRE(**b == "two");
  auto more = d.Next();
  REQUIRE(more.ok());
  REQUIRE_FALSE(more->has_value());
  REQUIRE(d.buffered() == 20 - 14);
  d.Feed(std::string_view(stream).substr(20));
  auto c = d.Next();
  REQUIRE(c.ok());
  REQUIRE(**c == std::string(100, 'z'));
  REQUIRE(d.buffered() == 0);
}

TEST_CASE("an oversized length is refused even when it arrives across chunks", "[proto]") {
  FrameDecoder d;
  std::string header("\x7f\xff\xff\xff", 4);
  d.Feed(std::string_view(header).substr(0, 2));
  REQUIRE_FALSE(d.Next()->has_value());
  d.Feed(std::string_view(header).substr(2));
  auto f = d.Next();
  REQUIRE_FALSE(f.ok());
  REQUIRE_THAT(f.error().message(), Catch::StartsWith("frame: length 2147483647 exceeds"));
}
