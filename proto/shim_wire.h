// The shim socket protocol: what mproxy-shim and the broker say to each other
// over the session's unix socket (docs/PROTOCOL.md, "The shim socket").
// Local only and always spoken by two binaries of one build, so it is a plain
// binary layout rather than CBOR: the shim links no libcbor and starts fast.
// No I/O here; passing fds with SCM_RIGHTS lives in common/unix_socket.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"

namespace mproxy::proto::shim {

// Bumped on any change to the layout below. The broker refuses a request of
// another version with an Exit naming both versions.
inline constexpr uint32_t kVersion = 2;  // 2: Stopped

// A frame is a 4-byte big-endian length N, then N bytes: a 1-byte type and
// the payload. N counts the type byte. N = 0 or N > kMaxFrame is an error,
// detected before anything is buffered. The limit is above Linux's argv+env
// limit (a quarter of an 8 MiB stack = 2 MiB) so a request the kernel would
// exec always fits.
inline constexpr size_t kMaxFrame = 8u << 20;
// Passed fds per request; below the kernel's SCM_MAX_FD (253).
inline constexpr size_t kMaxPassedFds = 200;
// Largest Input/Output payload a sender puts in one frame.
inline constexpr size_t kMaxChunk = 64u << 10;

enum class Type : uint8_t {
  // shim -> broker
  kRequest = 1,   // first and once; carries the passed fds (SCM_RIGHTS)
  kInput = 2,     // bytes read from the shim's terminal stdin
  kInputEof = 3,  // the terminal stdin reached end of file
  kSignal = 4,    // a signal the shim caught, by name
  kResize = 5,    // the shim's terminal changed size
  // broker -> shim
  kOutput = 16,   // bytes for one of the shim's terminal fds
  kExit = 17,     // last frame: how the shim must end
  kStopped = 18,  // the command on the remote terminal stopped (Ctrl-Z)
};

// One of the shim's open fds, as the remote command should have it.
struct Fd {
  enum class Mode : uint8_t {
    kPassed = 0,    // sent with the request (SCM_RIGHTS); the broker pumps it
    kTerminal = 1,  // a terminal the shim keeps; served by the remote pty
  };
  uint32_t fd = 0;
  Mode mode = Mode::kPassed;
  bool to_child = false;  // the command reads it (0, `3<file`) vs writes it
  bool operator==(const Fd&) const = default;
};

// Layout (all integers big-endian; str = u32 length + bytes; list = u32 count
// + items): u32 version, str exe, list<str> argv, list<str> env, str cwd,
// list<{u32 fd, u8 mode, u8 to_child}> fds, str term, u32 rows, u32 cols.
struct Request {
  uint32_t version = kVersion;
  std::string exe;                // the path the kernel executed (AT_EXECFN)
  std::vector<std::string> argv;  // argv[0] as the caller gave it
  std::vector<std::string> env;   // the shim's whole environment, "NAME=value"
  std::string cwd;                // getcwd(); empty if it failed
  // In ascending fd order. The kPassed ones travel with this frame's first
  // byte, in this order, as SCM_RIGHTS.
  std::vector<Fd> fds;
  std::string term;   // $TERM when any fd is a terminal
  uint32_t rows = 0;  // terminal size; 0 when unknown
  uint32_t cols = 0;
  bool operator==(const Request&) const = default;
};

struct Input {  // payload: the bytes
  std::string bytes;
  bool operator==(const Input&) const = default;
};
struct InputEof {  // payload: empty
  bool operator==(const InputEof&) const = default;
};
struct Signal {  // payload: str name ("INT", "TSTP"; no "SIG" prefix)
  std::string name;
  bool operator==(const Signal&) const = default;
};
struct Resize {  // payload: u32 rows, u32 cols
  uint32_t rows = 0;
  uint32_t cols = 0;
  bool operator==(const Resize&) const = default;
};
struct Output {  // payload: u32 fd, then the bytes (to the end of the frame)
  uint32_t fd = 0;
  std::string bytes;
  bool operator==(const Output&) const = default;
};

// payload: u8 kind (0 code, 1 signal), u32 code, str signal, u8 core,
// str message.
struct Exit {
  // The shim exits with `code` (0..255), or, when `signal` is set, re-raises
  // that signal on itself (falling back to exit 128+n if it survives it).
  uint32_t code = 0;
  std::optional<std::string> signal;  // "TERM"
  bool core = false;
  // Printed by the shim on stderr before it ends, as one line ending in a
  // newline, unless empty: "mproxy: grep: command not found on build-box".
  std::string message;
  bool operator==(const Exit&) const = default;
};

// payload: str signal ("TSTP", "TTIN", "TTOU", "STOP"). The command on the
// shim's remote terminal stopped as a job; the shim stops itself the same
// way (its shell sees a stopped job) and sends Signal "CONT" when continued.
struct Stopped {
  std::string signal;
  bool operator==(const Stopped&) const = default;
};

using Message = std::variant<Request, Input, InputEof, Signal, Resize, Output, Exit, Stopped>;

Type TypeOf(const Message& m);
const char* TypeName(Type t);

// The whole frame: length, type, payload.
std::string Encode(const Message& m);
// Appends the frame to `out`.
void EncodeTo(const Message& m, std::string* out);

// One frame body (the type byte and payload, without the length). Checks
// every length against the bytes left before allocating; trailing bytes,
// unknown types, a bad enum value or an over-long field are errors naming
// the message and field: "shim Request: argv[2]: length 4000000 exceeds the
// 12 bytes left". A Request whose version is not kVersion decodes to a
// Request holding only that version (the rest is not read), so the broker
// can answer with both versions.
Result<Message> DecodeBody(std::string_view body);

// Splits a byte stream into frames. Feed() copies; Next() returns a whole
// message, nullopt when more bytes are needed, or an error (bad length or
// body) after which the stream is unusable. Owned by one reader; not
// thread-safe.
class Decoder {
 public:
  void Feed(std::string_view bytes);
  Result<std::optional<Message>> Next();
  // Bytes buffered but not yet returned as a message.
  size_t buffered() const { return buf_.size() - head_; }

 private:
  std::string buf_;
  size_t head_ = 0;
  bool failed_ = false;
};

}  // namespace mproxy::proto::shim
