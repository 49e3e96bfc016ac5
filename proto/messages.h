// The typed messages of the mproxy wire protocol (docs/PROTOCOL.md).
// Each struct lists its fields once, in Fields(); the codec derives encoding,
// decoding and validation from that list. Numbers are never reused.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace mproxy::proto {

inline constexpr char kMagic[] = "mproxy";
// Protocol versions this build speaks, oldest first.
inline constexpr uint32_t kProtocolVersion = 1;

enum class MessageType : uint32_t {
  kHello = 1,
  kExec = 2,
  kStarted = 3,
  kData = 4,
  kEof = 5,
  kWindow = 6,
  kSignal = 7,
  kResize = 8,
  kExit = 9,
  kClose = 10,
  kPathQuery = 11,
  kPathInfo = 12,
  kFsRequest = 13,
  kFsReply = 14,
  kPing = 15,
  kPong = 16,
  kLog = 17,
  kError = 18,
  kStopped = 19,
};

// Field flags for Fields() declarations.
enum FieldFlags : unsigned {
  kOptional = 0,  // missing on decode: the member keeps its default
  kRequired = 1,  // missing on decode: the message is rejected
  kText = 2,      // std::string encoded as a CBOR text string, not bytes
};

// Local stdio/extra fd forwarded into a remote child.
struct FdSpec {
  enum Direction : uint32_t {
    kToChild = 0,    // the child reads it (stdin, `3<file`)
    kFromChild = 1,  // the child writes it (stdout, stderr, `3>file`)
  };
  uint32_t fd = 0;
  uint32_t direction = kToChild;
  bool tty = false;  // served by the channel's pty instead of a pipe

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "fd", s.fd, kRequired);
    v(2, "direction", s.direction, kRequired);
    v(3, "tty", s.tty, kOptional);
  }
  bool operator==(const FdSpec&) const = default;
};

struct PtySpec {
  std::string term;
  uint32_t rows = 24;
  uint32_t cols = 80;

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "term", s.term, kOptional);
    v(2, "rows", s.rows, kOptional);
    v(3, "cols", s.cols, kOptional);
  }
  bool operator==(const PtySpec&) const = default;
};

// One executable found on the remote PATH.
struct PathEntry {
  std::string name;
  std::string path;
  uint64_t size = 0;
  uint32_t mode = 0;  // POSIX st_mode
  int64_t mtime = 0;  // seconds since the epoch

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "name", s.name, kRequired);
    v(2, "path", s.path, kRequired);
    v(3, "size", s.size, kOptional);
    v(4, "mode", s.mode, kOptional);
    v(5, "mtime", s.mtime, kOptional);
  }
  bool operator==(const PathEntry&) const = default;
};

// Attributes of one file, as lstat/fstat report them (FsReply key 4, and in
// FsDirEntry). Numbers are the remote host's; mode is POSIX st_mode with the
// type bits; times are seconds since the epoch plus nanoseconds.
struct FsAttr {
  uint64_t ino = 0;
  uint32_t mode = 0;
  uint32_t nlink = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  uint64_t blocks = 0;  // 512-byte units
  uint32_t blksize = 0;
  uint64_t rdev = 0;
  int64_t atime = 0;
  uint32_t atime_nsec = 0;
  int64_t mtime = 0;
  uint32_t mtime_nsec = 0;
  int64_t ctime = 0;
  uint32_t ctime_nsec = 0;
  // The file has no extended attributes (or its filesystem none at all), so
  // the peer may answer xattr queries about it without asking. False when
  // unknown.
  bool no_xattrs = false;

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "ino", s.ino, kRequired);
    v(2, "mode", s.mode, kRequired);
    v(3, "nlink", s.nlink, kOptional);
    v(4, "uid", s.uid, kOptional);
    v(5, "gid", s.gid, kOptional);
    v(6, "size", s.size, kOptional);
    v(7, "blocks", s.blocks, kOptional);
    v(8, "blksize", s.blksize, kOptional);
    v(9, "rdev", s.rdev, kOptional);
    v(10, "atime", s.atime, kOptional);
    v(11, "atime_nsec", s.atime_nsec, kOptional);
    v(12, "mtime", s.mtime, kOptional);
    v(13, "mtime_nsec", s.mtime_nsec, kOptional);
    v(14, "ctime", s.ctime, kOptional);
    v(15, "ctime_nsec", s.ctime_nsec, kOptional);
    v(16, "no_xattrs", s.no_xattrs, kOptional);
  }
  bool operator==(const FsAttr&) const = default;
};

// One directory entry of a READDIR reply (FsReply key 5).
struct FsDirEntry {
  std::string name;
  uint64_t offset = 0;  // cookie: READDIR from here continues after this entry
  uint64_t ino = 0;
  uint32_t type = 0;           // st_mode type bits (S_IFREG, S_IFDIR, ...); 0 unknown
  std::optional<FsAttr> attr;  // missing when the entry vanished before lstat

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "name", s.name, kRequired);
    v(2, "offset", s.offset, kRequired);
    v(3, "ino", s.ino, kOptional);
    v(4, "type", s.type, kOptional);
    v(5, "attr", s.attr, kOptional);
  }
  bool operator==(const FsDirEntry&) const = default;
};

// A value in a file-operation request or reply. Unsigned integers decode as
// uint64_t, negative ones as int64_t, byte and text strings as std::string.
using FsValue = std::variant<uint64_t, int64_t, std::string>;
using FsFields = std::map<uint32_t, FsValue>;

// --- messages -------------------------------------------------------------

struct Hello {
  static constexpr MessageType kType = MessageType::kHello;
  static constexpr const char* kName = "Hello";
  std::string magic = kMagic;
  std::vector<uint32_t> versions;  // protocol versions spoken, any order
  std::string program_version;
  std::string os;
  std::string arch;
  std::vector<std::string> capabilities;
  uint32_t window = 0;  // credit per stream the sender grants; 0: kInitialWindow

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "magic", s.magic, kRequired | kText);
    v(2, "versions", s.versions, kRequired);
    v(3, "program_version", s.program_version, kOptional | kText);
    v(4, "os", s.os, kOptional | kText);
    v(5, "arch", s.arch, kOptional | kText);
    v(6, "capabilities", s.capabilities, kOptional | kText);
    v(7, "window", s.window, kOptional);
  }
  bool operator==(const Hello&) const = default;
};

struct Exec {
  static constexpr MessageType kType = MessageType::kExec;
  static constexpr const char* kName = "Exec";
  uint32_t channel = 0;
  std::string path;               // no slash: looked up on the remote PATH
  std::vector<std::string> argv;  // argv[0] preserved
  std::vector<std::string> env;   // "NAME=value"; see inherit_env
  std::string cwd;
  std::vector<FdSpec> fds;
  std::optional<PtySpec> pty;
  // false: `env` is the child's whole environment. true: the child gets the
  // agent's environment (the remote login environment) with `env` applied:
  // "NAME=value" sets NAME, a bare "NAME" removes it.
  bool inherit_env = false;
  // true: no Started for this channel. A peer that never looks at the pid
  // saves a frame (and a wake-up on each side) per command.
  bool no_started = false;

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "channel", s.channel, kRequired);
    v(2, "path", s.path, kRequired);
    v(3, "argv", s.argv, kRequired);
    v(4, "env", s.env, kOptional);
    v(5, "cwd", s.cwd, kOptional);
    v(6, "fds", s.fds, kOptional);
    v(7, "pty", s.pty, kOptional);
    v(8, "inherit_env", s.inherit_env, kOptional);
    v(9, "no_started", s.no_started, kOptional);
  }
  bool operator==(const Exec&) const = default;
};

struct Started {
  static constexpr MessageType kType = MessageType::kStarted;
  static constexpr const char* kName = "Started";
  uint32_t channel = 0;
  int64_t pid = 0;

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "channel", s.channel, kRequired);
    v(2, "pid", s.pid, kOptional);
  }
  bool operator==(const Started&) const = default;
};

struct Data {
  static constexpr MessageType kType = MessageType::kData;
  static constexpr const char* kName = "Data";
  uint32_t channel = 0;
  uint32_t fd = 0;
  std::string bytes;

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "channel", s.channel, kRequired);
    v(2, "fd", s.fd, kRequired);
    v(3, "data", s.bytes, kRequired);
  }
  bool operator==(const Data&) const = default;
};

struct Eof {
  static constexpr MessageType kType = MessageType::kEof;
  static constexpr const char* kName = "Eof";
  uint32_t channel = 0;
  uint32_t fd = 0;

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "channel", s.channel, kRequired);
    v(2, "fd", s.fd, kRequired);
  }
  bool operator==(const Eof&) const = default;
};

// Grants the peer `credit` more bytes of Data on stream (channel, fd).
struct Window {
  static constexpr MessageType kType = MessageType::kWindow;
  static constexpr const char* kName = "Window";
  uint32_t channel = 0;
  uint32_t fd = 0;
  uint64_t credit = 0;

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "channel", s.channel, kRequired);
    v(2, "fd", s.fd, kRequired);
    v(3, "credit", s.credit, kRequired);
  }
  bool operator==(const Window&) const = default;
};

struct Signal {
  static constexpr MessageType kType = MessageType::kSignal;
  static constexpr const char* kName = "Signal";
  uint32_t channel = 0;
  std::string name;  // "INT", "TERM", ... without the SIG prefix

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "channel", s.channel, kRequired);
    v(2, "name", s.name, kRequired | kText);
  }
  bool operator==(const Signal&) const = default;
};

struct Resize {
  static constexpr MessageType kType = MessageType::kResize;
  static constexpr const char* kName = "Resize";
  uint32_t channel = 0;
  uint32_t rows = 0;
  uint32_t cols = 0;

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "channel", s.channel, kRequired);
    v(2, "rows", s.rows, kRequired);
    v(3, "cols", s.cols, kRequired);
  }
  bool operator==(const Resize&) const = default;
};

// How a remote command ended: exactly one of `code` and `signal` is set. A
// command that could not start has `code` 127 (not found, no such cwd) or
// 126 (found but not runnable) and `error` saying why.
struct Exit {
  static constexpr MessageType kType = MessageType::kExit;
  static constexpr const char* kName = "Exit";
  uint32_t channel = 0;
  std::optional<int32_t> code;
  std::optional<std::string> signal;  // "TERM", "SEGV", ...
  bool core_dumped = false;
  std::string error;

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "channel", s.channel, kRequired);
    v(2, "code", s.code, kOptional);
    v(3, "signal", s.signal, kOptional | kText);
    v(4, "core_dumped", s.core_dumped, kOptional);
    v(5, "error", s.error, kOptional | kText);
  }
  bool operator==(const Exit&) const = default;
};

struct Close {
  static constexpr MessageType kType = MessageType::kClose;
  static constexpr const char* kName = "Close";
  uint32_t channel = 0;

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "channel", s.channel, kRequired);
  }
  bool operator==(const Close&) const = default;
};

struct PathQuery {
  static constexpr MessageType kType = MessageType::kPathQuery;
  static constexpr const char* kName = "PathQuery";
  uint64_t id = 0;
  std::vector<std::string> dirs;  // empty: the agent's PATH

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "id", s.id, kRequired);
    v(2, "dirs", s.dirs, kOptional);
  }
  bool operator==(const PathQuery&) const = default;
};

struct PathInfo {
  static constexpr MessageType kType = MessageType::kPathInfo;
  static constexpr const char* kName = "PathInfo";
  uint64_t id = 0;
  std::vector<PathEntry> entries;
  std::string error;
  std::string home;  // the agent's $HOME: what "~" means on that side
  // The agent's user and group: whose files the workspace shows as the
  // local user's. Missing from agents before they were added.
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "id", s.id, kRequired);
    v(2, "entries", s.entries, kOptional);
    v(3, "error", s.error, kOptional | kText);
    v(4, "home", s.home, kOptional | kText);
    v(5, "uid", s.uid, kOptional);
    v(6, "gid", s.gid, kOptional);
  }
  bool operator==(const PathInfo&) const = default;
};

// One file operation; proto/fs.h gives the typed form of every op.
struct FsRequest {
  static constexpr MessageType kType = MessageType::kFsRequest;
  static constexpr const char* kName = "FsRequest";
  uint64_t id = 0;
  uint32_t op = 0;
  FsFields fields;

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "id", s.id, kRequired);
    v(2, "op", s.op, kRequired);
    v(3, "fields", s.fields, kOptional);
  }
  bool operator==(const FsRequest&) const = default;
};

struct FsReply {
  static constexpr MessageType kType = MessageType::kFsReply;
  static constexpr const char* kName = "FsReply";
  uint64_t id = 0;
  int32_t err = 0;  // 0 or a positive Linux errno (asm-generic numbering)
  FsFields fields;
  std::optional<FsAttr> attr;
  std::vector<FsDirEntry> entries;

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "id", s.id, kRequired);
    v(2, "errno", s.err, kOptional);
    v(3, "fields", s.fields, kOptional);
    v(4, "attr", s.attr, kOptional);
    v(5, "entries", s.entries, kOptional);
  }
  bool operator==(const FsReply&) const = default;
};

struct Ping {
  static constexpr MessageType kType = MessageType::kPing;
  static constexpr const char* kName = "Ping";
  uint64_t id = 0;

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "id", s.id, kRequired);
  }
  bool operator==(const Ping&) const = default;
};

struct Pong {
  static constexpr MessageType kType = MessageType::kPong;
  static constexpr const char* kName = "Pong";
  uint64_t id = 0;

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "id", s.id, kRequired);
  }
  bool operator==(const Pong&) const = default;
};

struct Log {
  static constexpr MessageType kType = MessageType::kLog;
  static constexpr const char* kName = "Log";
  std::string level;  // "trace" ... "critical"
  std::string text;

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "level", s.level, kRequired | kText);
    v(2, "text", s.text, kRequired | kText);
  }
  bool operator==(const Log&) const = default;
};

struct ErrorMsg {
  static constexpr MessageType kType = MessageType::kError;
  static constexpr const char* kName = "Error";
  enum Code : uint32_t {
    kUnknownMessage = 1,  // the receiver does not know this message type
    kProtocol = 2,        // malformed frame or message; the sender disconnects
    kVersion = 3,         // no common protocol version
    kChannel = 4,         // a request named a channel that cannot be used
    kInternal = 5,
  };
  uint32_t code = kProtocol;
  std::string text;
  std::optional<uint32_t> channel;

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "code", s.code, kRequired);
    v(2, "text", s.text, kOptional | kText);
    v(3, "channel", s.channel, kOptional);
  }
  bool operator==(const ErrorMsg&) const = default;
};

// A well-formed frame whose message type this build does not know. Produced
// by the decoder only; it cannot be encoded.
struct UnknownMessage {
  uint32_t type = 0;
  bool operator==(const UnknownMessage&) const = default;
};

// The command on a channel's terminal stopped (a job-control stop: Ctrl-Z
// typed into it, or a stop signal) and waits for a Signal "CONT". Only for
// commands with a pty; see docs/PROTOCOL.md.
struct Stopped {
  static constexpr MessageType kType = MessageType::kStopped;
  static constexpr const char* kName = "Stopped";
  uint32_t channel = 0;
  std::string signal;  // "TSTP", "TTIN", "TTOU", "STOP"

  template <class S, class V>
  static void Fields(S& s, V& v) {
    v(1, "channel", s.channel, kRequired);
    v(2, "signal", s.signal, kRequired | kText);
  }
  bool operator==(const Stopped&) const = default;
};

using Message =
    std::variant<Hello, Exec, Started, Data, Eof, Window, Signal, Resize, Exit,
                 Close, PathQuery, PathInfo, FsRequest, FsReply, Ping, Pong,
                 Log, ErrorMsg, Stopped, UnknownMessage>;

// "Exec", "Data", ... or "Unknown(42)".
std::string MessageName(const Message& m);

}  // namespace mproxy::proto
