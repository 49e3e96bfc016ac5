// An in-memory transport pair: two Mux endpoints whose output is carried to
// each other by Pump(), in chunks of any size, for multiplexer tests.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "proto/mux.h"

namespace mproxy::testing {

using StreamId = std::pair<uint32_t, uint32_t>;  // (channel, fd)

// One side: records what arrives and writes queued data as room allows.
// Streams in `paused` are received but not consumed (a reader that stopped).
class Endpoint : public proto::MuxDelegate {
 public:
  explicit Endpoint(const std::string& program_version);

  void OnHello(const proto::Hello& peer, uint32_t version) override;
  void OnMessage(proto::Message&& m) override;
  void OnData(uint32_t channel, uint32_t fd, std::string_view bytes) override;
  void OnEof(uint32_t channel, uint32_t fd) override;
  void OnWritable(uint32_t channel, uint32_t fd) override;

  // Queues bytes (and optionally Eof) to send on a stream; written into the
  // mux as fast as it takes them.
  void QueueSend(uint32_t channel, uint32_t fd, std::string bytes, bool eof);
  // Stops or resumes consuming a stream; resuming consumes what is held.
  void Pause(StreamId s);
  void Resume(StreamId s);

  proto::Mux& mux() { return *mux_; }

  std::optional<proto::Hello> peer_hello;
  uint32_t version = 0;
  std::map<StreamId, std::string> received;
  std::set<StreamId> eofs;
  std::vector<proto::Message> messages;
  std::map<StreamId, size_t> unconsumed;
  // Largest number of received-but-unconsumed bytes seen on each stream.
  std::map<StreamId, size_t> max_unconsumed;
  size_t writable_events = 0;

 private:
  void Flush(StreamId s);

  std::unique_ptr<proto::Mux> mux_;
  std::set<StreamId> paused_;
  struct Pending {
    std::string bytes;
    size_t off = 0;
    bool eof = false;
  };
  std::map<StreamId, Pending> to_send_;
};

class MuxPair {
 public:
  MuxPair() : a("test-a"), b("test-b") {}

  // Carries bytes both ways until neither side has output, `chunk` bytes per
  // Feed call (0: whole batches) and at most `batch` bytes per TakeOutput.
  // Fails with the first Feed error.
  Status Pump(size_t chunk = 0, size_t batch = 256 * 1024, size_t max_rounds = 1000000);
  // One round: a's output into b, then b's into a. Returns bytes moved.
  Result<size_t> Step(size_t chunk, size_t batch);

  Endpoint a;
  Endpoint b;
};

}  // namespace mproxy::testing
