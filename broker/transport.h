// How the broker reaches a remote host: run a short command there, or open a
// long-lived byte stream to a remote command (the agent). Implemented over
// SSH (ssh_transport), local processes (process_transport), and any command
// prefix such as `docker exec -i NAME` (also process_transport).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace mproxy::broker {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// A bidirectional byte stream to one remote command's stdin/stdout. Owned by
// the AgentLink that uses it. Send and Close may be called from any thread;
// callbacks run on the stream's own thread, never concurrently with each
// other, and never after Close() has returned.
class ByteStream {
 public:
  struct Callbacks {
    std::function<void(std::string_view)> on_data;     // remote stdout bytes
    std::function<void(std::string_view)> on_stderr;   // remote stderr bytes
    std::function<void(const Status&)> on_closed;      // once, last callback
    // After a burst of on_data calls (one read round of the transport), when
    // batches_data() is true: a consumer may wake up once per burst instead
    // of once per chunk.
    std::function<void()> on_batch_end;
  };

  virtual ~ByteStream() = default;
  // Starts delivering callbacks. Called once.
  virtual void Start(Callbacks callbacks) = 0;
  // Queues bytes for the remote stdin.
  virtual void Send(std::string bytes) = 0;
  // Stops the stream and waits until no callback is running or will run.
  virtual void Close() = 0;
  // True when every burst of on_data is followed by on_batch_end.
  virtual bool batches_data() const { return false; }
};

// Owned by the broker's session. Methods block: call them off the loop thread
// (or before the loop starts).
class Transport {
 public:
  virtual ~Transport() = default;
  // "user@host:port" or "local", for messages.
  virtual std::string Describe() const = 0;
  // Runs `command` with the remote user's shell (`sh -c` semantics), feeds it
  // `input` on stdin, and collects its output.
  virtual Result<CommandResult> Run(const std::string& command, std::string_view input) = 0;
  // Starts `command` and returns a stream to its stdin/stdout.
  virtual Result<std::unique_ptr<ByteStream>> Open(const std::string& command) = 0;
};

}  // namespace mproxy::broker
