// The channel multiplexer: many channels over one byte stream, with a credit
// window per data stream, control frames ahead of data, and round-robin
// scheduling of data across streams. A pure state machine: it never does I/O;
// the owner feeds it received bytes and drains frames to send.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "proto/frame.h"
#include "proto/messages.h"

namespace mproxy::proto {

// Credit each data stream starts with, in each direction (bytes), unless the
// receiver's Hello grants more (key 7 `window`): the least every peer grants.
inline constexpr uint64_t kInitialWindow = 256 * 1024;
// The most credit per stream a Hello may grant; larger values count as this.
inline constexpr uint64_t kMaxInitialWindow = 64 * 1024 * 1024;
// What mproxy's own broker and agent grant: on a CPU-bound loopback pipe,
// 256 KiB leaves the sender waiting for Window frames (about 270 MB/s
// against 400 MB/s here; docs/PERFORMANCE.md).
inline constexpr uint32_t kPreferredWindow = 2 * 1024 * 1024;
// Largest payload of one Data frame the mux produces.
inline constexpr size_t kMaxDataChunk = 64 * 1024;
// Bytes Write() buffers per outgoing stream before it pushes back.
inline constexpr size_t kSendBufferLimit = 256 * 1024;
// Encoded control frames allowed to wait unsent before the peer is judged
// not to be reading (an error, instead of unbounded memory).
inline constexpr size_t kMaxControlBacklog = 4 * 1024 * 1024;

// Receives what arrives on a Mux. Called only from inside Mux::Feed and
// Mux::TakeOutput, on the owner's thread. Implementations may call back into
// the Mux (Write, Send, Consume) from these callbacks.
class MuxDelegate {
 public:
  virtual ~MuxDelegate() = default;
  // The peer's Hello was accepted and `version` chosen.
  virtual void OnHello(const Hello& peer, uint32_t version) = 0;
  // Every message other than Hello, Data, Eof and Window.
  virtual void OnMessage(Message&& m) = 0;
  // Bytes on stream (channel, fd). Call Mux::Consume once they are used up,
  // so the peer gets the credit back.
  virtual void OnData(uint32_t channel, uint32_t fd, std::string_view bytes) = 0;
  virtual void OnEof(uint32_t channel, uint32_t fd) = 0;
  // Stream (channel, fd) can take more bytes after Write accepted less than
  // it was given.
  virtual void OnWritable(uint32_t channel, uint32_t fd) = 0;
};

// Owned by one session, used from one thread.
//
// Channels: a channel exists from the Exec that opens it (sent or received)
// or an explicit OpenChannel, until a Close is sent or received. Data, Eof
// and Window frames for channels that do not exist are dropped: they are the
// normal tail of a channel the other side already closed.
class Mux {
 public:
  // Queues `mine` as the first frame. `mine.window` is the credit this side
  // grants each stream the peer sends on (0: kInitialWindow).
  Mux(MuxDelegate* delegate, Hello mine);
  Mux(const Mux&) = delete;
  Mux& operator=(const Mux&) = delete;

  // Bytes received from the peer, in any chunking. An error means the session
  // is unusable (a malformed frame, a version mismatch, credit exceeded); an
  // Error message telling the peer why has been queued for TakeOutput.
  Status Feed(std::string_view bytes);

  // Queues a control message ahead of all data. Data, Eof and Window are
  // rejected: use Write, WriteEof and Consume.
  Status Send(const Message& m);
  // Queues a control message that leaves only after every byte and Eof
  // already written on the channel's streams has been sent (Exit uses this).
  Status SendAfterData(uint32_t channel, const Message& m);

  void OpenChannel(uint32_t channel);
  bool HasChannel(uint32_t channel) const;

  // Buffers up to the stream's free space and returns how many bytes were
  // taken. After a short write, OnWritable fires when room frees up.
  size_t Write(uint32_t channel, uint32_t fd, std::string_view bytes);
  // Ends the stream after the bytes already written.
  void WriteEof(uint32_t channel, uint32_t fd);
  // Free space Write would accept now.
  size_t WriteRoom(uint32_t channel, uint32_t fd) const;

  // The owner has used `n` bytes delivered by OnData; credit goes back to the
  // peer in batches.
  void Consume(uint32_t channel, uint32_t fd, size_t n);

  bool HasOutput() const;
  // Bytes of encoded control frames queued and not yet taken by TakeOutput
  // (the session paces bulky replies by it, well below kMaxControlBacklog).
  size_t ControlBacklog() const { return control_.size(); }
  // Appends frames to `out`: all queued control frames first, then Data and
  // Eof frames round-robin across ready streams until about `max_bytes`.
  void TakeOutput(std::string* out, size_t max_bytes);

  // Introspection for tests and stats.
  uint32_t version() const { return version_; }
  uint64_t SendCredit(uint32_t channel, uint32_t fd) const;
  size_t Buffered(uint32_t channel, uint32_t fd) const;
  size_t channel_count() const { return channels_.size(); }
  uint64_t dropped_frames() const { return dropped_frames_; }

 private:
  struct OutStream {
    std::string buf;
    size_t head = 0;  // bytes of buf already sent
    uint64_t credit = 0;  // set from the peer's window when created
    bool eof_pending = false;
    bool eof_sent = false;
    bool want_writable = false;
    bool queued = false;  // present in ready_
    size_t pending() const { return buf.size() - head; }
  };
  struct InStream {
    uint64_t window = 0;   // bytes the peer may still send (ours when created)
    uint64_t unacked = 0;              // consumed, not yet returned as credit
    bool eof = false;
  };
  struct Channel {
    std::unordered_map<uint32_t, OutStream> out;
    std::unordered_map<uint32_t, InStream> in;
    std::vector<std::string> after_data;  // encoded frames
  };
  struct StreamKey {
    uint32_t channel;
    uint32_t fd;
  };

  Status Dispatch(Message&& m);
  Status OnDataFrame(uint32_t channel, uint32_t fd, std::string_view bytes);
  Status Fail(uint32_t code, const std::string& text);
  Status QueueControl(const Message& m);
  bool StreamReady(const OutStream& s) const;
  void MaybeQueue(uint32_t channel, uint32_t fd, OutStream& s);
  bool ChannelDrained(const Channel& c) const;
  void ReleaseAfterData(Channel& c, std::string* out);
  OutStream& OutFor(Channel& c, uint32_t fd);
  InStream& InFor(Channel& c, uint32_t fd);
  OutStream* FindOut(uint32_t channel, uint32_t fd);
  const OutStream* FindOut(uint32_t channel, uint32_t fd) const;

  MuxDelegate* delegate_;
  Hello mine_;
  uint64_t local_window_;                  // credit we grant per stream
  uint64_t peer_window_ = kInitialWindow;  // credit the peer grants per stream
  uint32_t version_ = 0;
  bool hello_received_ = false;
  Status failed_;
  FrameDecoder decoder_;
  std::string control_;  // encoded control frames, in order
  std::unordered_map<uint32_t, Channel> channels_;
  std::deque<StreamKey> ready_;  // streams with sendable data or Eof
  uint64_t dropped_frames_ = 0;
};

}  // namespace mproxy::proto
