// CborWriter/CborReader: what the codec relies on.
#include "proto/cbor.h"

#include <cbor.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <limits>
#include <string>
#include <vector>

using mproxy::proto::CborKind;
using mproxy::proto::CborReader;
using mproxy::proto::CborWriter;

TEST_CASE("integers of every width round-trip", "[proto]") {
  std::string buf;
  CborWriter w(&buf);
  const uint64_t us[] = {0, 23, 24, 255, 256, 65535, 65536, 0xffffffffULL,
                         0x100000000ULL, std::numeric_limits<uint64_t>::max()};
  const int64_t is[] = {-1, -24, -25, -256, -257, -65537, std::numeric_limits<int64_t>::min()};
  for (uint64_t u : us) w.Uint(u);
  for (int64_t i : is) w.Int(i);
  CborReader r(buf);
  for (uint64_t u : us) REQUIRE(r.ReadUint().value() == u);
  for (int64_t i : is) REQUIRE(r.ReadInt().value() == i);
  REQUIRE(r.AtEnd());
}

TEST_CASE("strings keep arbitrary bytes including NUL and invalid UTF-8", "[proto]") {
  std::string raw("a\0b\xff\xfe", 5);
  std::string buf;
  CborWriter w(&buf);
  w.Bytes(raw);
  w.Text("héllo");
  CborReader r(buf);
  REQUIRE(r.ReadString().value() == raw);
  REQUIRE(r.ReadString().value() == "héllo");
}

TEST_CASE("a wrong type is reported with what was expected and where", "[proto]") {
  std::string buf;
  CborWriter(&buf).Text("x");
  CborReader r(buf);
  auto v = r.ReadUint();
  REQUIRE_FALSE(v.ok());
  REQUIRE(v.error().message() == "cbor: expected unsigned integer, got text string at offset 0");
}

TEST_CASE("a negative integer below int64 range is refused", "[proto]") {
  std::string buf;
  buf.push_back(static_cast<char>(0x3b));  // negint, 8-byte argument
  buf.append(8, '\xff');
  CborReader r(buf);
  auto v = r.ReadInt();
  REQUIRE_FALSE(v.ok());
  REQUIRE_THAT(v.error().message(), Catch::Contains("out of range"));
}

TEST_CASE("indefinite-length items are refused", "[proto]") {
  for (unsigned char head : {0x5f, 0x7f, 0x9f, 0xbf}) {
    std::string buf(1, static_cast<char>(head));
    buf.push_back(static_cast<char>(0xff));
    CborReader r(buf);
    auto it = r.Next();
    REQUIRE_FALSE(it.ok());
    REQUIRE_THAT(it.error().message(), Catch::Contains("indefinite-length"));
  }
}

TEST_CASE("truncated items are reported, not read past the end", "[proto]") {
  std::string buf;
  CborWriter(&buf).Bytes(std::string(100, 'x'));
  for (size_t n = 0; n < buf.size(); ++n) {
    CborReader r(std::string_view(buf).substr(0, n));
    REQUIRE_FALSE(r.ReadString().ok());
  }
}

TEST_CASE("an array count larger than the data is refused before allocating", "[proto]") {
  std::string buf;
  CborWriter(&buf).ArrayHeader(1ULL << 60);
  CborReader r(buf);
  auto n = r.ReadArrayHeader();
  REQUIRE_FALSE(n.ok());
  REQUIRE_THAT(n.error().message(), Catch::Contains("exceeds data"));
}

TEST_CASE("Skip passes over nested items and stops at excessive depth", "[proto]") {
  std::string buf;
  CborWriter w(&buf);
  w.MapHeader(2);
  w.Uint(1);
  w.ArrayHeader(3);
  w.Text("a");
  w.Bool(true);
  w.Null();
  w.Text("k");
  w.Int(-5);
  w.Uint(7);
  CborReader r(buf);
  REQUIRE(r.Skip().ok());
  REQUIRE(r.ReadUint().value() == 7);

  std::string deep(100, static_cast<char>(0x81));  // [[[[...
  deep.push_back(0);
  CborReader d(deep);
  auto s = d.Skip();
  REQUIRE_FALSE(s.ok());
  REQUIRE_THAT(s.error().message(), Catch::Contains("nesting deeper"));
}

// CborReader decodes the common items itself and leaves the rest to
// libcbor: for every initial byte of an integer or string, with arguments of
// every width, complete or cut short, it must agree with libcbor's own
// cbor_load on the kind, the value and how many bytes the item takes.
TEST_CASE("every integer and string header decodes as libcbor decodes it", "[proto]") {
  for (unsigned first = 0; first < 0x80; ++first) {  // majors 0-3
    // Indefinite-length strings are refused on purpose (a test above).
    if ((first & 0x1f) == 31 && first >= 0x40) continue;
    for (size_t tail = 0; tail <= 12; ++tail) {
      std::string in(1, static_cast<char>(first));
      for (size_t i = 0; i < tail; ++i) in.push_back(static_cast<char>(i == 0 ? 0 : 3 + i));
      INFO("input: first byte " << first << ", " << tail << " more");
      cbor_load_result ref{};
      cbor_item_t* item =
          cbor_load(reinterpret_cast<cbor_data>(in.data()), in.size(), &ref);
      CborReader r(in);
      auto got = r.Next();
      REQUIRE(got.ok() == (item != nullptr));
      if (item == nullptr) continue;
      CHECK(ref.read == r.offset());
      switch (cbor_typeof(item)) {
        case CBOR_TYPE_UINT:
          CHECK(got->kind == CborKind::kUint);
          CHECK(got->u == cbor_get_int(item));
          break;
        case CBOR_TYPE_NEGINT:
          CHECK(got->kind == CborKind::kNegInt);
          CHECK(got->u == cbor_get_int(item));
          break;
        case CBOR_TYPE_BYTESTRING:
        case CBOR_TYPE_STRING: {
          const bool bytes = cbor_typeof(item) == CBOR_TYPE_BYTESTRING;
          CHECK(got->kind == (bytes ? CborKind::kBytes : CborKind::kText));
          const size_t n = bytes ? cbor_bytestring_length(item) : cbor_string_length(item);
          const unsigned char* h = bytes ? cbor_bytestring_handle(item) : cbor_string_handle(item);
          CHECK(got->str == std::string_view(reinterpret_cast<const char*>(h), n));
          break;
        }
        default:
          FAIL("unexpected type from libcbor");
      }
      cbor_decref(&item);
    }
  }
}

// CborWriter writes headers itself: for arguments at and around every
// width's limits it must write the bytes libcbor's encoders write.
TEST_CASE("every header CborWriter writes is the one libcbor's encoders write", "[proto]") {
  std::vector<uint64_t> values;
  for (uint64_t limit :
       {uint64_t{0}, uint64_t{23}, uint64_t{0xff}, uint64_t{0xffff}, uint64_t{0xffffffff}}) {
    for (uint64_t d = 0; d < 3; ++d) {
      values.push_back(limit - std::min(limit, d));
      values.push_back(limit + d);
    }
  }
  values.push_back(std::numeric_limits<uint64_t>::max());
  values.push_back(std::numeric_limits<uint64_t>::max() - 1);
  values.push_back(uint64_t{0x0123456789abcdef});
  auto ref = [](size_t (*encode)(uint64_t, unsigned char*, size_t), uint64_t v) {
    unsigned char b[16];
    size_t n = encode(v, b, sizeof b);
    return std::string(reinterpret_cast<const char*>(b), n);
  };
  for (uint64_t v : values) {
    INFO("argument " << v);
    std::string out;
    CborWriter w(&out);
    w.Uint(v);
    CHECK(out == ref(cbor_encode_uint, v));
    out.clear();
    w.ArrayHeader(v);
    CHECK(out == ref(cbor_encode_array_start, v));
    out.clear();
    w.MapHeader(v);
    CHECK(out == ref(cbor_encode_map_start, v));
    out.clear();
    w.Int(-1 - static_cast<int64_t>(v & 0x7fffffffffffffff));
    CHECK(out == ref(cbor_encode_negint, v & 0x7fffffffffffffff));
    if (v <= 70000) {  // strings: the header, then the bytes
      std::string s(v, 'q');
      out.clear();
      w.Bytes(s);
      CHECK(out == ref(cbor_encode_bytestring_start, v) + s);
      out.clear();
      w.Text(s);
      CHECK(out == ref(cbor_encode_string_start, v) + s);
    }
  }
  for (bool b : {false, true}) {
    std::string out;
    CborWriter(&out).Bool(b);
    unsigned char ref_b[1];
    CHECK(out == std::string(reinterpret_cast<const char*>(ref_b), cbor_encode_bool(b, ref_b, 1)));
  }
  std::string out;
  CborWriter(&out).Null();
  CHECK(out == "\xf6");
}
