// Message codec derived from each message's Fields() list.
#include "proto/codec.h"

#include <limits>
#include <type_traits>

#include "proto/cbor.h"
#include "proto/frame.h"

namespace mproxy::proto {
namespace {

template <typename T>
struct IsOptional : std::false_type {};
template <typename T>
struct IsOptional<std::optional<T>> : std::true_type {};
template <typename T>
struct IsVector : std::false_type {};
template <typename T>
struct IsVector<std::vector<T>> : std::true_type {};

// A struct with a Fields() list (messages and nested records).
template <typename T>
concept Record = requires(T& t) {
  T::Fields(t, std::declval<void (&)(int, const char*, int&, unsigned)>());
};

// --- encoding ---------------------------------------------------------------

template <typename T>
void EncodeValue(CborWriter& w, const T& v, unsigned flags);

template <typename T>
void EncodeRecord(CborWriter& w, const T& rec) {
  uint64_t present = 0;
  auto count = [&](uint64_t, const char*, const auto& member, unsigned) {
    using M = std::decay_t<decltype(member)>;
    if constexpr (IsOptional<M>::value) {
      if (member.has_value()) ++present;
    } else {
      ++present;
    }
  };
  T::Fields(rec, count);
  w.MapHeader(present);
  auto write = [&](uint64_t key, const char*, const auto& member, unsigned flags) {
    using M = std::decay_t<decltype(member)>;
    if constexpr (IsOptional<M>::value) {
      if (!member.has_value()) return;
      w.Uint(key);
      EncodeValue(w, *member, flags);
    } else {
      w.Uint(key);
      EncodeValue(w, member, flags);
    }
  };
  T::Fields(rec, write);
}

template <typename T>
void EncodeValue(CborWriter& w, const T& v, unsigned flags) {
  if constexpr (std::is_same_v<T, bool>) {
    w.Bool(v);
  } else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) {
    w.Uint(v);
  } else if constexpr (std::is_integral_v<T>) {
    w.Int(v);
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (flags & kText) {
      w.Text(v);
    } else {
      w.Bytes(v);
    }
  } else if constexpr (IsVector<T>::value) {
    w.ArrayHeader(v.size());
    for (const auto& e : v) EncodeValue(w, e, flags);
  } else if constexpr (std::is_same_v<T, FsFields>) {
    w.MapHeader(v.size());
    for (const auto& [key, value] : v) {
      w.Uint(key);
      std::visit(
          [&w](const auto& x) {
            using X = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<X, uint64_t>) {
              w.Uint(x);
            } else if constexpr (std::is_same_v<X, int64_t>) {
              w.Int(x);
            } else {
              w.Bytes(x);
            }
          },
          value);
    }
  } else {
    static_assert(Record<T>, "no CBOR encoding for this field type");
    EncodeRecord(w, v);
  }
}

// --- decoding ---------------------------------------------------------------

template <typename T>
Status DecodeValue(CborReader& r, T& out, int depth);

template <typename T>
Status DecodeInteger(CborReader& r, T& out) {
  if constexpr (std::is_unsigned_v<T>) {
    auto v = r.ReadUint();
    if (!v) return v.error();
    if (*v > std::numeric_limits<T>::max()) {
      return Error("value " + std::to_string(*v) + " out of range");
    }
    out = static_cast<T>(*v);
  } else {
    auto v = r.ReadInt();
    if (!v) return v.error();
    if (*v > std::numeric_limits<T>::max() || *v < std::numeric_limits<T>::min()) {
      return Error("value " + std::to_string(*v) + " out of range");
    }
    out = static_cast<T>(*v);
  }
  return Ok();
}

Status DecodeFsFields(CborReader& r, FsFields& out) {
  auto n = r.ReadMapHeader();
  if (!n) return n.error();
  out.clear();
  for (uint64_t i = 0; i < *n; ++i) {
    uint32_t key = 0;
    if (auto s = DecodeInteger(r, key); !s) return s;
    auto item = r.Next();
    if (!item) return item.error();
    FsValue value;
    switch (item->kind) {
      case CborKind::kUint: value = item->u; break;
      case CborKind::kNegInt:
        if (item->u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          return Error("fs field " + std::to_string(key) + ": integer out of range");
        }
        value = -1 - static_cast<int64_t>(item->u);
        break;
      case CborKind::kBytes:
      case CborKind::kText: value = std::string(item->str); break;
      default:
        return Error("fs field " + std::to_string(key) + ": unsupported type " +
                     CborKindName(item->kind));
    }
    if (!out.emplace(key, std::move(value)).second) {
      return Error("fs field " + std::to_string(key) + " appears twice");
    }
  }
  return Ok();
}

// One member of a record, whose key came with bit `bit` of `seen`.
template <typename M>
Status DecodeField(CborReader& r, M& member, const char* name, uint64_t bit, uint64_t& seen,
                   int depth) {
  if (seen & bit) return Error(std::string("field '") + name + "' appears twice");
  seen |= bit;
  Status st;
  if constexpr (IsOptional<M>::value) {
    typename M::value_type v{};
    st = DecodeValue(r, v, depth + 1);
    if (st) member = std::move(v);
  } else {
    st = DecodeValue(r, member, depth + 1);
  }
  if (!st) return st.error().Wrap(std::string("field '") + name + "'");
  return st;
}

template <typename T>
Status DecodeRecord(CborReader& r, T& out, int depth) {
  auto n = r.ReadMapHeader();
  if (!n) return n.error();
  uint64_t seen = 0;
  for (uint64_t i = 0; i < *n; ++i) {
    auto key = r.Next();
    if (!key) return key.error();
    bool matched = false;
    Status st;
    if (key->kind == CborKind::kUint) {
      int index = 0;
      // Inlined into Fields, the key comparisons become a switch; only the
      // matching member's DecodeField runs (a record of 16 fields had made
      // 256 calls).
      auto decode = [&](uint64_t k, const char* name, auto& member, unsigned)
          __attribute__((always_inline)) {
        int bit = index++;
        if (matched || k != key->u) return;
        matched = true;
        st = DecodeField(r, member, name, uint64_t{1} << bit, seen, depth);
      };
      T::Fields(out, decode);
    }
    if (!matched) st = r.Skip();  // unknown keys are ignored
    if (!st) return st;
  }
  int index = 0;
  Status missing;
  auto check = [&](uint64_t, const char* name, auto&, unsigned flags)
      __attribute__((always_inline)) {
    int bit = index++;
    if (missing && (flags & kRequired) && !(seen & (uint64_t{1} << bit))) {
      missing = Error(std::string("missing required field '") + name + "'");
    }
  };
  T::Fields(out, check);
  return missing;
}

template <typename T>
Status DecodeValue(CborReader& r, T& out, int depth) {
  if (depth > CborReader::kMaxDepth) return Error("nesting too deep");
  if constexpr (std::is_same_v<T, bool>) {
    auto v = r.ReadBool();
    if (!v) return v.error();
    out = *v;
    return Ok();
  } else if constexpr (std::is_integral_v<T>) {
    return DecodeInteger(r, out);
  } else if constexpr (std::is_same_v<T, std::string>) {
    auto v = r.ReadString();
    if (!v) return v.error();
    out.assign(v->data(), v->size());
    return Ok();
  } else if constexpr (std::is_same_v<T, std::string_view>) {
    auto v = r.ReadString();  // a view into the reader's input: no copy
    if (!v) return v.error();
    out = *v;
    return Ok();
  } else if constexpr (IsVector<T>::value) {
    auto n = r.ReadArrayHeader();
    if (!n) return n.error();
    out.clear();
    out.reserve(*n);  // bounded: ReadArrayHeader checks n <= remaining bytes
    for (uint64_t i = 0; i < *n; ++i) {
      out.emplace_back();
      if (auto s = DecodeValue(r, out.back(), depth + 1); !s) {
        return s.error().Wrap("element " + std::to_string(i));
      }
    }
    return Ok();
  } else if constexpr (std::is_same_v<T, FsFields>) {
    return DecodeFsFields(r, out);
  } else {
    static_assert(Record<T>, "no CBOR decoding for this field type");
    return DecodeRecord(r, out, depth);
  }
}

template <size_t I = 0>
Result<Message> DecodeBody(uint64_t type, CborReader& r) {
  if constexpr (I + 1 < std::variant_size_v<Message>) {  // last is UnknownMessage
    using T = std::variant_alternative_t<I, Message>;
    if (type == static_cast<uint64_t>(T::kType)) {
      T msg;
      if (auto s = DecodeRecord(r, msg, 1); !s) return s.error().Wrap(T::kName);
      return Message(std::move(msg));
    }
    return DecodeBody<I + 1>(type, r);
  } else {
    // Unknown type: the body must still be one well-formed item.
    if (auto s = r.Skip(); !s) return s.error().Wrap("message type " + std::to_string(type));
    if (type > std::numeric_limits<uint32_t>::max()) {
      return Error("message type " + std::to_string(type) + " out of range");
    }
    return Message(UnknownMessage{static_cast<uint32_t>(type)});
  }
}

// Mux and others map a Message's variant index to its MessageType; keep the
// variant in message-number order.
template <size_t... I>
constexpr bool VariantInTypeOrder(std::index_sequence<I...>) {
  return ((static_cast<size_t>(std::variant_alternative_t<I, Message>::kType) == I + 1) && ...);
}
static_assert(VariantInTypeOrder(std::make_index_sequence<std::variant_size_v<Message> - 1>{}),
              "Message alternatives must follow MessageType numbering");

}  // namespace

MessageType TypeOf(const Message& m) { return static_cast<MessageType>(m.index() + 1); }

Status EncodeFrame(const Message& m, std::string* out) {
  if (std::holds_alternative<UnknownMessage>(m)) {
    return Error("cannot encode a message of unknown type");
  }
  size_t start = BeginFrame(out);
  CborWriter w(out);
  std::visit(
      [&w](const auto& msg) {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (!std::is_same_v<T, UnknownMessage>) {
          w.ArrayHeader(2);
          w.Uint(static_cast<uint64_t>(T::kType));
          EncodeRecord(w, msg);
        }
      },
      m);
  if (auto s = FinishFrame(out, start); !s) return s.error().Wrap(MessageName(m));
  return Ok();
}

Status EncodeDataFrame(uint32_t channel, uint32_t fd, std::string_view bytes,
                       std::string* out) {
  size_t start = BeginFrame(out);
  CborWriter w(out);
  w.ArrayHeader(2);
  w.Uint(static_cast<uint64_t>(MessageType::kData));
  w.MapHeader(3);
  w.Uint(1);
  w.Uint(channel);
  w.Uint(2);
  w.Uint(fd);
  w.Uint(3);
  w.Bytes(bytes);
  if (auto s = FinishFrame(out, start); !s) return s.error().Wrap("Data");
  return Ok();
}

Result<std::optional<DataView>> DecodeDataView(std::string_view payload) {
  CborReader r(payload);
  auto n = r.ReadArrayHeader();
  if (!n || *n != 2) return std::optional<DataView>();
  auto type = r.ReadUint();
  if (!type || *type != static_cast<uint64_t>(MessageType::kData)) {
    return std::optional<DataView>();
  }
  DataView d;
  if (auto s = DecodeRecord(r, d, 1); !s) return s.error().Wrap(Data::kName);
  if (!r.AtEnd()) {
    return Error(std::string(Data::kName) + ": " + std::to_string(r.remaining()) +
                 " trailing bytes after the message");
  }
  return std::optional<DataView>(d);
}

Result<Message> DecodeMessage(std::string_view payload) {
  CborReader r(payload);
  auto n = r.ReadArrayHeader();
  if (!n) return n.error().Wrap("message");
  if (*n != 2) {
    return Error("message: expected [type, body], got an array of " + std::to_string(*n));
  }
  auto type = r.ReadUint();
  if (!type) return type.error().Wrap("message type");
  auto msg = DecodeBody(*type, r);
  if (!msg) return msg;
  if (!r.AtEnd()) {
    return Error(MessageName(*msg) + ": " + std::to_string(r.remaining()) +
                 " trailing bytes after the message");
  }
  return msg;
}

std::string MessageName(const Message& m) {
  return std::visit(
      [](const auto& msg) -> std::string {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, UnknownMessage>) {
          return "Unknown(" + std::to_string(msg.type) + ")";
        } else {
          return T::kName;
        }
      },
      m);
}

}  // namespace mproxy::proto
