// A minimal CBOR writer and pull reader. The writer and the reader's common
// items (integers, strings, arrays, maps) are done here; the reader leaves the
// rest to libcbor's streaming decoder, and the tests check both against
// libcbor. Only definite-length items are produced or accepted: the protocol
// never needs the indefinite forms.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace mproxy::proto {

// Appends CBOR items to a caller-owned string. Single-threaded.
class CborWriter {
 public:
  explicit CborWriter(std::string* out) : out_(out) {}

  void Uint(uint64_t v);
  void Int(int64_t v);
  void Bool(bool v);
  void Null();
  void Bytes(std::string_view v);
  void Text(std::string_view v);
  void ArrayHeader(uint64_t n);
  void MapHeader(uint64_t n);

 private:
  void Head(unsigned major, uint64_t v);  // an item's initial byte and argument

  std::string* out_;
};

enum class CborKind {
  kUint,
  kNegInt,  // value is -1 - u
  kBytes,
  kText,
  kArray,
  kMap,
  kTag,
  kBool,
  kNull,
  kUndefined,
  kFloat,
};

const char* CborKindName(CborKind k);

struct CborItem {
  CborKind kind = CborKind::kNull;
  uint64_t u = 0;          // kUint, kNegInt (raw), kArray/kMap count, kTag
  std::string_view str;    // kBytes, kText: points into the reader's input
  bool b = false;          // kBool
  double f = 0;            // kFloat
};

// Reads CBOR items one at a time from a byte span it does not own. Every
// error names what was expected and the byte offset. Single-threaded.
class CborReader {
 public:
  explicit CborReader(std::string_view in) : in_(in) {}

  // The next item's header (for strings: the whole string).
  Result<CborItem> Next();

  Result<uint64_t> ReadUint();
  Result<int64_t> ReadInt();  // unsigned or negative, within int64_t
  Result<bool> ReadBool();
  // A byte or text string: paths and argv are bytes, human text is text.
  Result<std::string_view> ReadString();
  Result<uint64_t> ReadArrayHeader();
  Result<uint64_t> ReadMapHeader();

  // Skips one complete item, nested ones included, up to kMaxDepth deep.
  Status Skip();

  size_t offset() const { return pos_; }
  size_t remaining() const { return in_.size() - pos_; }
  bool AtEnd() const { return pos_ == in_.size(); }

  static constexpr int kMaxDepth = 16;

 private:
  Status SkipDepth(int depth);
  Error Unexpected(const char* want, const CborItem& got) const;

  std::string_view in_;
  size_t pos_ = 0;
  size_t item_start_ = 0;
};

}  // namespace mproxy::proto
