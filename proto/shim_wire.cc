// The shim socket's binary frames: encoding, bounds-checked decoding, and the
// stream splitter. Layout in proto/shim_wire.h and docs/PROTOCOL.md.
#include "proto/shim_wire.h"

#include <limits>
#include <utility>

namespace mproxy::proto::shim {
namespace {

constexpr size_t kHeaderSize = 4;
constexpr size_t kNoIndex = std::numeric_limits<size_t>::max();
// The smallest encodings of a list item, to bound a count by the bytes left.
constexpr size_t kMinStr = 4;
constexpr size_t kMinFd = 6;

// --- encoding ---------------------------------------------------------------

void PutU8(std::string* out, uint8_t v) { out->push_back(static_cast<char>(v)); }

void PutU32(std::string* out, uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)};
  out->append(b, sizeof b);
}

void PutStr(std::string* out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

void PutStrList(std::string* out, const std::vector<std::string>& list) {
  PutU32(out, static_cast<uint32_t>(list.size()));
  for (const auto& s : list) PutStr(out, s);
}

struct Encoder {
  std::string* out;

  void operator()(const Request& r) const {
    PutU32(out, r.version);
    PutStr(out, r.exe);
    PutStrList(out, r.argv);
    PutStrList(out, r.env);
    PutStr(out, r.cwd);
    PutU32(out, static_cast<uint32_t>(r.fds.size()));
    for (const Fd& f : r.fds) {
      PutU32(out, f.fd);
      PutU8(out, static_cast<uint8_t>(f.mode));
      PutU8(out, f.to_child ? 1 : 0);
    }
    PutStr(out, r.term);
    PutU32(out, r.rows);
    PutU32(out, r.cols);
  }
  void operator()(const Input& m) const { out->append(m.bytes); }
  void operator()(const InputEof&) const {}
  void operator()(const Signal& m) const { PutStr(out, m.name); }
  void operator()(const Resize& m) const {
    PutU32(out, m.rows);
    PutU32(out, m.cols);
  }
  void operator()(const Output& m) const {
    PutU32(out, m.fd);
    out->append(m.bytes);
  }
  void operator()(const Exit& m) const {
    PutU8(out, m.signal.has_value() ? 1 : 0);
    PutU32(out, m.code);
    PutStr(out, m.signal.value_or(std::string()));
    PutU8(out, m.core ? 1 : 0);
    PutStr(out, m.message);
  }
  void operator()(const Stopped& m) const { PutStr(out, m.signal); }
};

// --- decoding ---------------------------------------------------------------

// Names a field in errors: "argv", "argv[2]", "fds[0].mode". Built into a
// string only when an error is reported.
struct Field {
  const char* name;
  size_t index = kNoIndex;
  const char* member = nullptr;

  std::string str() const {
    std::string s = name;
    if (index != kNoIndex) s += "[" + std::to_string(index) + "]";
    if (member != nullptr) s += std::string(".") + member;
    return s;
  }
};

uint32_t LoadU32(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

// Reads the payload of one message front to back. Every read checks the
// bytes left first; errors carry the field name (the caller adds the
// message name).
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  size_t left() const { return in_.size(); }

  Status U8(const Field& f, uint8_t* v) {
    if (in_.empty()) return Short(f, 1);
    *v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return Ok();
  }

  Status U32(const Field& f, uint32_t* v) {
    if (in_.size() < 4) return Short(f, 4);
    *v = LoadU32(in_.data());
    in_.remove_prefix(4);
    return Ok();
  }

  // A u8 that must be 0 or 1.
  Status Bool(const Field& f, bool* v) {
    uint8_t b = 0;
    if (auto s = U8(f, &b); !s) return s;
    if (b > 1) return Error(f.str() + ": bad value " + std::to_string(b) + " (0 or 1)");
    *v = b == 1;
    return Ok();
  }

  Status Str(const Field& f, std::string* v) {
    uint32_t len = 0;
    if (auto s = U32(f, &len); !s) return s;
    if (len > in_.size()) {
      return Error(f.str() + ": length " + std::to_string(len) + " exceeds the " +
                   std::to_string(in_.size()) + " bytes left");
    }
    v->assign(in_.substr(0, len));
    in_.remove_prefix(len);
    return Ok();
  }

  // A list count, checked against what the bytes left could hold at
  // `min_item` bytes per item, so no allocation follows a lie.
  Status Count(const Field& f, size_t min_item, uint32_t* n) {
    if (auto s = U32(f, n); !s) return s;
    if (*n > in_.size() / min_item) {
      return Error(f.str() + ": " + std::to_string(*n) + " entries cannot fit in the " +
                   std::to_string(in_.size()) + " bytes left");
    }
    return Ok();
  }

  Status StrList(const char* name, std::vector<std::string>* v) {
    uint32_t n = 0;
    if (auto s = Count(Field{name}, kMinStr, &n); !s) return s;
    v->resize(n);
    for (uint32_t i = 0; i < n; ++i) {
      if (auto s = Str(Field{name, i}, &(*v)[i]); !s) return s;
    }
    return Ok();
  }

  std::string_view Rest() { return std::exchange(in_, std::string_view()); }

  Status Done() const {
    if (in_.empty()) return Ok();
    return Error(in_.size() == 1 ? std::string("1 trailing byte")
                                 : std::to_string(in_.size()) + " trailing bytes");
  }

 private:
  Status Short(const Field& f, size_t need) const {
    return Error(f.str() + ": needs " + std::to_string(need) + " bytes, " +
                 std::to_string(in_.size()) + " left");
  }

  std::string_view in_;
};

// Runs each step in order, stopping at the first error.
#define MPROXY_TRY(expr)         \
  do {                           \
    if (auto s_ = (expr); !s_) { \
      return s_;                 \
    }                            \
  } while (0)

Status DecodeRequest(Reader& r, Request* m) {
  MPROXY_TRY(r.U32(Field{"version"}, &m->version));
  // Another version may lay out the rest differently: hand back only the
  // version, so the broker can say which versions each side speaks.
  if (m->version != kVersion) {
    r.Rest();
    return Ok();
  }
  MPROXY_TRY(r.Str(Field{"exe"}, &m->exe));
  MPROXY_TRY(r.StrList("argv", &m->argv));
  MPROXY_TRY(r.StrList("env", &m->env));
  MPROXY_TRY(r.Str(Field{"cwd"}, &m->cwd));
  uint32_t n = 0;
  MPROXY_TRY(r.Count(Field{"fds"}, kMinFd, &n));
  m->fds.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    Fd& f = m->fds[i];
    uint8_t mode = 0;
    MPROXY_TRY(r.U32(Field{"fds", i, "fd"}, &f.fd));
    MPROXY_TRY(r.U8(Field{"fds", i, "mode"}, &mode));
    if (mode > static_cast<uint8_t>(Fd::Mode::kTerminal)) {
      return Error(Field{"fds", i, "mode"}.str() + ": unknown mode " + std::to_string(mode));
    }
    f.mode = static_cast<Fd::Mode>(mode);
    MPROXY_TRY(r.Bool(Field{"fds", i, "to_child"}, &f.to_child));
  }
  MPROXY_TRY(r.Str(Field{"term"}, &m->term));
  MPROXY_TRY(r.U32(Field{"rows"}, &m->rows));
  MPROXY_TRY(r.U32(Field{"cols"}, &m->cols));
  return Ok();
}

Status DecodeExit(Reader& r, Exit* m) {
  uint8_t kind = 0;
  MPROXY_TRY(r.U8(Field{"kind"}, &kind));
  if (kind > 1) return Error("kind: unknown kind " + std::to_string(kind) + " (0 code, 1 signal)");
  MPROXY_TRY(r.U32(Field{"code"}, &m->code));
  if (m->code > 255) {
    return Error("code: " + std::to_string(m->code) + " is not an exit status (0..255)");
  }
  std::string signal;
  MPROXY_TRY(r.Str(Field{"signal"}, &signal));
  if (kind == 1) {
    if (signal.empty()) return Error("signal: empty name with kind 1 (signal)");
    m->signal = std::move(signal);
  } else if (!signal.empty()) {
    return Error("signal: a name with kind 0 (code)");
  }
  MPROXY_TRY(r.Bool(Field{"core"}, &m->core));
  MPROXY_TRY(r.Str(Field{"message"}, &m->message));
  return Ok();
}

Status DecodePayload(Type type, Reader& r, Message* out) {
  switch (type) {
    case Type::kRequest: {
      Request m;
      MPROXY_TRY(DecodeRequest(r, &m));
      *out = std::move(m);
      return Ok();
    }
    case Type::kInput:
      *out = Input{std::string(r.Rest())};
      return Ok();
    case Type::kInputEof:
      *out = InputEof{};
      return Ok();
    case Type::kSignal: {
      Signal m;
      MPROXY_TRY(r.Str(Field{"name"}, &m.name));
      *out = std::move(m);
      return Ok();
    }
    case Type::kResize: {
      Resize m;
      MPROXY_TRY(r.U32(Field{"rows"}, &m.rows));
      MPROXY_TRY(r.U32(Field{"cols"}, &m.cols));
      *out = m;
      return Ok();
    }
    case Type::kOutput: {
      Output m;
      MPROXY_TRY(r.U32(Field{"fd"}, &m.fd));
      m.bytes.assign(r.Rest());
      *out = std::move(m);
      return Ok();
    }
    case Type::kExit: {
      Exit m;
      MPROXY_TRY(DecodeExit(r, &m));
      *out = std::move(m);
      return Ok();
    }
    case Type::kStopped: {
      Stopped m;
      MPROXY_TRY(r.Str(Field{"signal"}, &m.signal));
      if (m.signal.empty()) return Error("signal: empty name");
      *out = std::move(m);
      return Ok();
    }
  }
  return Error("unknown message type");  // not reached: DecodeBody checks
}

#undef MPROXY_TRY

bool KnownType(uint8_t t) {
  switch (static_cast<Type>(t)) {
    case Type::kRequest:
    case Type::kInput:
    case Type::kInputEof:
    case Type::kSignal:
    case Type::kResize:
    case Type::kOutput:
    case Type::kExit:
    case Type::kStopped:
      return true;
  }
  return false;
}

}  // namespace

Type TypeOf(const Message& m) {
  struct Visitor {
    Type operator()(const Request&) const { return Type::kRequest; }
    Type operator()(const Input&) const { return Type::kInput; }
    Type operator()(const InputEof&) const { return Type::kInputEof; }
    Type operator()(const Signal&) const { return Type::kSignal; }
    Type operator()(const Resize&) const { return Type::kResize; }
    Type operator()(const Output&) const { return Type::kOutput; }
    Type operator()(const Exit&) const { return Type::kExit; }
    Type operator()(const Stopped&) const { return Type::kStopped; }
  };
  return std::visit(Visitor{}, m);
}

const char* TypeName(Type t) {
  switch (t) {
    case Type::kRequest:
      return "Request";
    case Type::kInput:
      return "Input";
    case Type::kInputEof:
      return "InputEof";
    case Type::kSignal:
      return "Signal";
    case Type::kResize:
      return "Resize";
    case Type::kOutput:
      return "Output";
    case Type::kExit:
      return "Exit";
    case Type::kStopped:
      return "Stopped";
  }
  return "unknown";
}

void EncodeTo(const Message& m, std::string* out) {
  size_t start = out->size();
  out->append(kHeaderSize, '\0');
  PutU8(out, static_cast<uint8_t>(TypeOf(m)));
  std::visit(Encoder{out}, m);
  auto len = static_cast<uint32_t>(out->size() - start - kHeaderSize);
  char* h = out->data() + start;
  h[0] = static_cast<char>(len >> 24);
  h[1] = static_cast<char>(len >> 16);
  h[2] = static_cast<char>(len >> 8);
  h[3] = static_cast<char>(len);
}

std::string Encode(const Message& m) {
  std::string out;
  EncodeTo(m, &out);
  return out;
}

Result<Message> DecodeBody(std::string_view body) {
  if (body.empty()) return Error("shim frame: empty body, no message type");
  auto raw_type = static_cast<uint8_t>(body[0]);
  if (!KnownType(raw_type)) {
    return Error("shim frame: unknown message type " + std::to_string(raw_type));
  }
  auto type = static_cast<Type>(raw_type);
  Reader r(body.substr(1));
  Message m;
  Status s = DecodePayload(type, r, &m);
  if (s) s = r.Done();
  if (!s) return s.error().Wrap(std::string("shim ") + TypeName(type));
  return m;
}

void Decoder::Feed(std::string_view bytes) {
  if (failed_) return;
  if (head_ > 0) {  // Next() has consumed whole frames: drop them
    buf_.erase(0, head_);
    head_ = 0;
  }
  buf_.append(bytes);
}

Result<std::optional<Message>> Decoder::Next() {
  using Maybe = std::optional<Message>;
  if (failed_) return Error("shim frame: the stream is unusable after an earlier error");
  size_t avail = buf_.size() - head_;
  if (avail < kHeaderSize) return Maybe();
  uint32_t len = LoadU32(buf_.data() + head_);
  if (len == 0 || len > kMaxFrame) {
    failed_ = true;
    buf_.clear();
    head_ = 0;
    if (len == 0) return Error("shim frame: length 0 (a frame holds at least its type byte)");
    return Error("shim frame: length " + std::to_string(len) + " exceeds the maximum of " +
                 std::to_string(kMaxFrame));
  }
  if (avail - kHeaderSize < len) return Maybe();
  std::string_view body(buf_.data() + head_ + kHeaderSize, len);
  auto m = DecodeBody(body);
  head_ += kHeaderSize + len;
  if (head_ == buf_.size()) {
    buf_.clear();
    head_ = 0;
  }
  if (!m) {
    failed_ = true;
    buf_.clear();
    head_ = 0;
    return m.error();
  }
  return Maybe(std::move(m).value());
}

}  // namespace mproxy::proto::shim
