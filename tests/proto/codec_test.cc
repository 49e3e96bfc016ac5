// Message codec: round trips of every message and damaged input of every kind.
#include "proto/codec.h"

#include <catch2/catch.hpp>
#include <set>

#include "proto/cbor.h"
#include "proto/frame.h"
#include "tests/fakes/sample_messages.h"

using namespace mproxy;
using namespace mproxy::proto;

namespace {

// The payload of the single frame EncodeFrame produces.
std::string Payload(const Message& m) {
  std::string frame;
  REQUIRE(EncodeFrame(m, &frame).ok());
  REQUIRE(frame.size() >= kFrameHeaderSize);
  return frame.substr(kFrameHeaderSize);
}

// [type, {fields written by `body`}]
template <typename Fn>
std::string RawMessage(uint64_t type, uint64_t fields, Fn body) {
  std::string buf;
  CborWriter w(&buf);
  w.ArrayHeader(2);
  w.Uint(type);
  w.MapHeader(fields);
  body(w);
  return buf;
}

std::string DecodeError(std::string_view payload) {
  auto m = DecodeMessage(payload);
  REQUIRE_FALSE(m.ok());
  return m.error().message();
}

}  // namespace

TEST_CASE("every message type survives encode then decode unchanged", "[proto]") {
  std::set<size_t> types;
  for (const Message& m : testing::SampleMessages()) {
    INFO(MessageName(m));
    auto back = DecodeMessage(Payload(m));
    REQUIRE(back.ok());
    REQUIRE(*back == m);
    types.insert(m.index());
  }
  // Every alternative except UnknownMessage is covered.
  REQUIRE(types.size() == std::variant_size_v<Message> - 1);
}

TEST_CASE("default-valued messages round-trip too", "[proto]") {
  for (const Message& m : {Message(Data{}), Message(Exit{}), Message(Exec{}), Message(Hello{})}) {
    auto back = DecodeMessage(Payload(m));
    REQUIRE(back.ok());
    REQUIRE(*back == m);
  }
}

TEST_CASE("the Data fast path writes the same bytes as the generic encoder", "[proto]") {
  std::string a, b;
  Data d{3, 1, std::string(70000, 'q')};
  REQUIRE(EncodeFrame(d, &a).ok());
  REQUIRE(EncodeDataFrame(3, 1, d.bytes, &b).ok());
  REQUIRE(a == b);
}

TEST_CASE("a message larger than a frame cannot be encoded", "[proto]") {
  Exec e;
  e.path = "x";
  e.argv.assign(2000, std::string(1000, 'a'));  // ~2 MB of argv
  std::string out = "prefix";
  auto s = EncodeFrame(e, &out);
  REQUIRE_FALSE(s.ok());
  REQUIRE_THAT(s.error().message(), Catch::StartsWith("Exec: frame: message of"));
  REQUIRE(out == "prefix");
}

TEST_CASE("every truncation of every message is an error, never a crash", "[proto]") {
  for (const Message& m : testing::SampleMessages()) {
    std::string p = Payload(m);
    for (size_t n = 0; n < p.size(); ++n) {
      INFO(MessageName(m) << " cut at " << n);
      REQUIRE_FALSE(DecodeMessage(std::string_view(p).substr(0, n)).ok());
    }
  }
}

TEST_CASE("trailing bytes after the message are refused", "[proto]") {
  std::string p = Payload(Ping{1}) + std::string(1, '\0');
  REQUIRE(DecodeError(p) == "Ping: 1 trailing bytes after the message");
}

TEST_CASE("a field of the wrong CBOR type names the message and field", "[proto]") {
  std::string p = RawMessage(4, 3, [](CborWriter& w) {
    w.Uint(1);
    w.Text("seven");  // channel must be an integer
    w.Uint(2);
    w.Uint(1);
    w.Uint(3);
    w.Bytes("x");
  });
  REQUIRE(DecodeError(p) ==
          "Data: field 'channel': cbor: expected unsigned integer, got text string at offset 4");
}

TEST_CASE("a missing required field is named", "[proto]") {
  std::string p = RawMessage(4, 2, [](CborWriter& w) {
    w.Uint(1);
    w.Uint(1);
    w.Uint(3);
    w.Bytes("x");
  });
  REQUIRE(DecodeError(p) == "Data: missing required field 'fd'");
}

TEST_CASE("a field given twice is refused", "[proto]") {
  std::string p = RawMessage(15, 2, [](CborWriter& w) {
    w.Uint(1);
    w.Uint(1);
    w.Uint(1);
    w.Uint(2);
  });
  REQUIRE(DecodeError(p) == "Ping: field 'id' appears twice");
}

TEST_CASE("an integer too large for its field is refused", "[proto]") {
  std::string p = RawMessage(10, 1, [](CborWriter& w) {
    w.Uint(1);
    w.Uint(1ULL << 32);  // channel is 32-bit
  });
  REQUIRE(DecodeError(p) == "Close: field 'channel': value 4294967296 out of range");
}

TEST_CASE("unknown map keys of any shape are ignored", "[proto]") {
  std::string p = RawMessage(15, 3, [](CborWriter& w) {
    w.Uint(99);
    w.ArrayHeader(2);
    w.Text("future");
    w.MapHeader(0);
    w.Text("named-key");
    w.Bool(true);
    w.Uint(1);
    w.Uint(77);
  });
  auto m = DecodeMessage(p);
  REQUIRE(m.ok());
  REQUIRE(std::get<Ping>(*m).id == 77);
}

TEST_CASE("an unknown message type decodes as UnknownMessage", "[proto]") {
  std::string p = RawMessage(500, 1, [](CborWriter& w) {
    w.Uint(1);
    w.Text("from the future");
  });
  auto m = DecodeMessage(p);
  REQUIRE(m.ok());
  REQUIRE(std::get<UnknownMessage>(*m).type == 500);
  REQUIRE(MessageName(*m) == "Unknown(500)");
}

TEST_CASE("an unknown message type with a malformed body is still an error", "[proto]") {
  std::string p = RawMessage(500, 1, [](CborWriter& w) { w.Uint(1); });  // value missing
  REQUIRE_FALSE(DecodeMessage(p).ok());
}

TEST_CASE("a message that is not [type, body] is refused", "[proto]") {
  std::string buf;
  CborWriter w(&buf);
  w.ArrayHeader(3);
  w.Uint(15);
  w.MapHeader(0);
  w.Null();
  REQUIRE(DecodeError(buf) == "message: expected [type, body], got an array of 3");
  std::string map;
  CborWriter(&map).MapHeader(0);
  REQUIRE(DecodeError(map) == "message: cbor: expected array, got map at offset 0");
  REQUIRE(DecodeError("") == "message: cbor: unexpected end of data at offset 0");
}

TEST_CASE("an array element of the wrong type names its index", "[proto]") {
  std::string p = RawMessage(11, 2, [](CborWriter& w) {
    w.Uint(1);
    w.Uint(5);
    w.Uint(2);
    w.ArrayHeader(2);
    w.Bytes("/bin");
    w.Uint(3);
  });
  REQUIRE_THAT(DecodeError(p), Catch::StartsWith("PathQuery: field 'dirs': element 1: cbor: expected string"));
}

TEST_CASE("nested records decode their own required fields", "[proto]") {
  std::string p = RawMessage(2, 4, [](CborWriter& w) {
    w.Uint(1);
    w.Uint(1);
    w.Uint(2);
    w.Bytes("/bin/true");
    w.Uint(3);
    w.ArrayHeader(0);
    w.Uint(6);
    w.ArrayHeader(1);
    w.MapHeader(1);
    w.Uint(1);
    w.Uint(0);  // direction missing
  });
  REQUIRE(DecodeError(p) == "Exec: field 'fds': element 0: missing required field 'direction'");
}

TEST_CASE("the UnknownMessage placeholder cannot be sent", "[proto]") {
  std::string out;
  REQUIRE_FALSE(EncodeFrame(UnknownMessage{9}, &out).ok());
  REQUIRE(out.empty());
}

TEST_CASE("a Data frame decodes as a view into the frame, other messages do not", "[proto]") {
  std::string p = Payload(Data{5, 2, std::string("pay\0load", 8)});
  auto v = DecodeDataView(p);
  REQUIRE(v.ok());
  REQUIRE(v->has_value());
  REQUIRE((*v)->channel == 5);
  REQUIRE((*v)->fd == 2);
  REQUIRE((*v)->bytes == std::string("pay\0load", 8));
  // The bytes point into the payload itself: nothing was copied.
  REQUIRE((*v)->bytes.data() >= p.data());
  REQUIRE((*v)->bytes.data() + (*v)->bytes.size() <= p.data() + p.size());

  auto other = DecodeDataView(Payload(Ping{1}));
  REQUIRE(other.ok());
  REQUIRE_FALSE(other->has_value());
}

TEST_CASE("a damaged Data frame gives the same errors through the view decoder", "[proto]") {
  std::string missing = RawMessage(4, 2, [](CborWriter& w) {
    w.Uint(1);
    w.Uint(1);
    w.Uint(3);
    w.Bytes("x");
  });
  auto v = DecodeDataView(missing);
  REQUIRE_FALSE(v.ok());
  REQUIRE(v.error().message() == DecodeError(missing));
  std::string trailing = Payload(Data{1, 1, "x"}) + std::string(1, '\0');
  auto t = DecodeDataView(trailing);
  REQUIRE_FALSE(t.ok());
  REQUIRE(t.error().message() == "Data: 1 trailing bytes after the message");
}
