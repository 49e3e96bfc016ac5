// CborWriter and CborReader: the only place that includes <cbor.h>.
#include "proto/cbor.h"

#include <cbor.h>

#include <limits>

namespace mproxy::proto {
namespace {

// An item's initial byte and at most 8 bytes of argument.
constexpr size_t kMaxHeader = 9;

// Streaming-decoder callbacks: each fills the CborItem behind `ctx`.
struct DecodeState {
  CborItem item;
  bool indefinite = false;
  bool unsupported = false;
};

DecodeState* St(void* ctx) { return static_cast<DecodeState*>(ctx); }
void Set(void* ctx, CborKind kind, uint64_t u = 0, std::string_view str = {}) {
  CborItem& it = St(ctx)->item;
  it.kind = kind;
  it.u = u;
  it.str = str;
}
void OnUint8(void* c, uint8_t v) noexcept { Set(c, CborKind::kUint, v); }
void OnUint16(void* c, uint16_t v) noexcept { Set(c, CborKind::kUint, v); }
void OnUint32(void* c, uint32_t v) noexcept { Set(c, CborKind::kUint, v); }
void OnUint64(void* c, uint64_t v) noexcept { Set(c, CborKind::kUint, v); }
void OnNeg8(void* c, uint8_t v) noexcept { Set(c, CborKind::kNegInt, v); }
void OnNeg16(void* c, uint16_t v) noexcept { Set(c, CborKind::kNegInt, v); }
void OnNeg32(void* c, uint32_t v) noexcept { Set(c, CborKind::kNegInt, v); }
void OnNeg64(void* c, uint64_t v) noexcept { Set(c, CborKind::kNegInt, v); }
void OnIndef(void* c) noexcept { St(c)->indefinite = true; }
void OnBytes(void* c, cbor_data d, size_t n) noexcept {
  Set(c, CborKind::kBytes, n, std::string_view(reinterpret_cast<const char*>(d), n));
}
void OnText(void* c, cbor_data d, size_t n) noexcept {
  Set(c, CborKind::kText, n, std::string_view(reinterpret_cast<const char*>(d), n));
}
void OnArray(void* c, size_t n) noexcept { Set(c, CborKind::kArray, n); }
void OnMap(void* c, size_t n) noexcept { Set(c, CborKind::kMap, n); }
void OnTag(void* c, uint64_t v) noexcept { Set(c, CborKind::kTag, v); }
void OnFloat(void* c, float v) noexcept {
  Set(c, CborKind::kFloat);
  St(c)->item.f = v;
}
void OnDouble(void* c, double v) noexcept {
  Set(c, CborKind::kFloat);
  St(c)->item.f = v;
}
void OnUndef(void* c) noexcept { Set(c, CborKind::kUndefined); }
void OnNull(void* c) noexcept { Set(c, CborKind::kNull); }
void OnBool(void* c, bool v) noexcept {
  Set(c, CborKind::kBool);
  St(c)->item.b = v;
}
void OnBreak(void* c) noexcept { St(c)->unsupported = true; }

const cbor_callbacks kCallbacks = [] {
  cbor_callbacks cb{};
  cb.uint8 = OnUint8;
  cb.uint16 = OnUint16;
  cb.uint32 = OnUint32;
  cb.uint64 = OnUint64;
  cb.negint8 = OnNeg8;
  cb.negint16 = OnNeg16;
  cb.negint32 = OnNeg32;
  cb.negint64 = OnNeg64;
  cb.byte_string_start = OnIndef;
  cb.byte_string = OnBytes;
  cb.string = OnText;
  cb.string_start = OnIndef;
  cb.indef_array_start = OnIndef;
  cb.array_start = OnArray;
  cb.indef_map_start = OnIndef;
  cb.map_start = OnMap;
  cb.tag = OnTag;
  cb.float2 = OnFloat;
  cb.float4 = OnFloat;
  cb.float8 = OnDouble;
  cb.undefined = OnUndef;
  cb.null = OnNull;
  cb.boolean = OnBool;
  cb.indef_break = OnBreak;
  return cb;
}();

}  // namespace

const char* CborKindName(CborKind k) {
  switch (k) {
    case CborKind::kUint: return "unsigned integer";
    case CborKind::kNegInt: return "negative integer";
    case CborKind::kBytes: return "byte string";
    case CborKind::kText: return "text string";
    case CborKind::kArray: return "array";
    case CborKind::kMap: return "map";
    case CborKind::kTag: return "tag";
    case CborKind::kBool: return "bool";
    case CborKind::kNull: return "null";
    case CborKind::kUndefined: return "undefined";
    case CborKind::kFloat: return "float";
  }
  return "?";
}

void CborWriter::Head(unsigned major, uint64_t v) {
  // RFC 8949 3.1: the argument in the initial byte below 24, else in the
  // 1, 2, 4 or 8 big-endian bytes after it. Written here rather than by
  // libcbor's encoders, which cost a call per byte.
  unsigned char b[kMaxHeader];
  size_t n;
  const auto m = static_cast<unsigned char>(major << 5);
  if (v < 24) {
    b[0] = static_cast<unsigned char>(m | v);
    n = 1;
  } else {
    // Additional info 24 + k: 2^k bytes follow (the reader's Next inverts it).
    const unsigned k = v <= 0xff ? 0 : v <= 0xffff ? 1 : v <= 0xffffffff ? 2 : 3;
    const size_t bytes = size_t{1} << k;
    b[0] = static_cast<unsigned char>(m | (24 + k));
    for (size_t i = 0; i < bytes; ++i) {
      b[1 + i] = static_cast<unsigned char>(v >> (8 * (bytes - 1 - i)));
    }
    n = 1 + bytes;
  }
  out_->append(reinterpret_cast<const char*>(b), n);
}

void CborWriter::Uint(uint64_t v) { Head(0, v); }

void CborWriter::Int(int64_t v) {
  if (v >= 0) return Head(0, static_cast<uint64_t>(v));
  Head(1, static_cast<uint64_t>(-(v + 1)));
}

void CborWriter::Bool(bool v) { out_->push_back(static_cast<char>(v ? 0xf5 : 0xf4)); }

void CborWriter::Null() { out_->push_back(static_cast<char>(0xf6)); }

void CborWriter::Bytes(std::string_view v) {
  Head(2, v.size());
  out_->append(v);
}

void CborWriter::Text(std::string_view v) {
  Head(3, v.size());
  out_->append(v);
}

void CborWriter::ArrayHeader(uint64_t count) { Head(4, count); }

void CborWriter::MapHeader(uint64_t count) { Head(5, count); }

Result<CborItem> CborReader::Next() {
  item_start_ = pos_;
  if (pos_ >= in_.size()) {
    return Error("cbor: unexpected end of data at offset " + std::to_string(pos_));
  }
  // The items mproxy's messages are made of (integers, strings, arrays and
  // maps of definite length) are decoded here: through libcbor's callbacks
  // each cost several times more, and a listing of 20000 files is over half
  // a million of them. Anything else (floats, simple values, tags,
  // indefinite or reserved lengths, truncation) goes to libcbor, whose
  // verdict stands.
  const auto* p = reinterpret_cast<const uint8_t*>(in_.data()) + pos_;
  const size_t avail = in_.size() - pos_;
  const unsigned major = p[0] >> 5;
  const unsigned info = p[0] & 0x1fu;
  if (major <= 5 && info < 28) {
    uint64_t arg = info;
    size_t head = 1;
    if (info >= 24) {
      head += size_t{1} << (info - 24);  // 1, 2, 4 or 8 bytes follow
      if (avail >= head) {
        arg = 0;
        for (size_t i = 1; i < head; ++i) arg = (arg << 8) | p[i];
      }
    }
    const bool string = major == 2 || major == 3;
    if (avail >= head && (!string || arg <= avail - head)) {
      static constexpr CborKind kKinds[] = {CborKind::kUint,  CborKind::kNegInt,
                                            CborKind::kBytes, CborKind::kText,
                                            CborKind::kArray, CborKind::kMap};
      CborItem item;
      item.kind = kKinds[major];
      item.u = arg;
      if (string) item.str = std::string_view(in_.data() + pos_ + head, static_cast<size_t>(arg));
      pos_ += head + (string ? static_cast<size_t>(arg) : 0);
      return item;
    }
  }
  DecodeState st;
  auto r = cbor_stream_decode(reinterpret_cast<cbor_data>(in_.data() + pos_),
                              in_.size() - pos_, &kCallbacks, &st);
  if (r.status == CBOR_DECODER_NEDATA) {
    return Error("cbor: truncated item at offset " + std::to_string(pos_));
  }
  if (r.status != CBOR_DECODER_FINISHED) {
    return Error("cbor: malformed item at offset " + std::to_string(pos_));
  }
  if (st.indefinite || st.unsupported) {
    return Error("cbor: indefinite-length item at offset " + std::to_string(pos_) +
                 " is not allowed");
  }
  pos_ += r.read;
  return st.item;
}

Error CborReader::Unexpected(const char* want, const CborItem& got) const {
  return Error(std::string("cbor: expected ") + want + ", got " +
               CborKindName(got.kind) + " at offset " + std::to_string(item_start_));
}

Result<uint64_t> CborReader::ReadUint() {
  auto it = Next();
  if (!it) return it.error();
  if (it->kind != CborKind::kUint) return Unexpected("unsigned integer", *it);
  return it->u;
}

Result<int64_t> CborReader::ReadInt() {
  auto it = Next();
  if (!it) return it.error();
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (it->kind == CborKind::kUint) {
    if (it->u > kMax) return Error("cbor: integer out of range at offset " + std::to_string(item_start_));
    return static_cast<int64_t>(it->u);
  }
  if (it->kind == CborKind::kNegInt) {
    if (it->u > kMax) return Error("cbor: integer out of range at offset " + std::to_string(item_start_));
    return -1 - static_cast<int64_t>(it->u);
  }
  return Unexpected("integer", *it);
}

Result<bool> CborReader::ReadBool() {
  auto it = Next();
  if (!it) return it.error();
  if (it->kind != CborKind::kBool) return Unexpected("bool", *it);
  return it->b;
}

Result<std::string_view> CborReader::ReadString() {
  auto it = Next();
  if (!it) return it.error();
  if (it->kind != CborKind::kBytes && it->kind != CborKind::kText) {
    return Unexpected("string", *it);
  }
  return it->str;
}

Result<uint64_t> CborReader::ReadArrayHeader() {
  auto it = Next();
  if (!it) return it.error();
  if (it->kind != CborKind::kArray) return Unexpected("array", *it);
  // Every element takes at least one byte: a larger count is a lie.
  if (it->u > remaining()) return Error("cbor: array count exceeds data at offset " + std::to_string(item_start_));
  return it->u;
}

Result<uint64_t> CborReader::ReadMapHeader() {
  auto it = Next();
  if (!it) return it.error();
  if (it->kind != CborKind::kMap) return Unexpected("map", *it);
  if (it->u > remaining() / 2) return Error("cbor: map count exceeds data at offset " + std::to_string(item_start_));
  return it->u;
}

Status CborReader::Skip() { return SkipDepth(0); }

Status CborReader::SkipDepth(int depth) {
  if (depth > kMaxDepth) {
    return Error("cbor: nesting deeper than " + std::to_string(kMaxDepth) + " at offset " + std::to_string(pos_));
  }
  auto it = Next();
  if (!it) return it.error();
  uint64_t children = 0;
  switch (it->kind) {
    case CborKind::kArray: children = it->u; break;
    case CborKind::kMap:
      if (it->u > remaining() / 2) return Error("cbor: map count exceeds data");
      children = it->u * 2;
      break;
    case CborKind::kTag: children = 1; break;
    default: return Ok();
  }
  if (children > remaining()) return Error("cbor: item count exceeds data at offset " + std::to_string(item_start_));
  for (uint64_t i = 0; i < children; ++i) {
    auto s = SkipDepth(depth + 1);
    if (!s) return s;
  }
  return Ok();
}

}  // namespace mproxy::proto
