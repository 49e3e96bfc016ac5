// FdPump: moves bytes between one nonblocking child fd (a pipe end or a pty
// master) and a channel's streams on the Mux, under the mux's credit: output
// is read only while the mux takes it, input is Consumed only once written.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "common/unique_fd.h"
#include "proto/mux.h"

namespace mproxy::agent {

class FdPump;

// Told about a pump's progress. Called from the pump's libuv callbacks.
class FdPumpDelegate {
 public:
  virtual ~FdPumpDelegate() = default;
  // The pump handed bytes or an Eof to the mux: time to flush output.
  virtual void OnPumpOutput() = 0;
  // The pump has nothing left to do (output at Eof, input closed).
  virtual void OnPumpFinished(FdPump* pump) = 0;
};

// Owned by a session channel through std::unique_ptr until Close(), after
// which libuv owns it and frees it in the close callback. Loop thread only.
class FdPump {
 public:
  // `out_fds`: streams the child's output goes to (data on the first, Eof on
  // all); empty for an input-only pipe. `in_fds`: streams whose data is
  // written into `fd`; empty for an output-only pipe. A pty master has both.
  FdPump(uv_loop_t* loop, proto::Mux* mux, FdPumpDelegate* delegate, uint32_t channel, UniqueFd fd,
         std::vector<uint32_t> out_fds, std::vector<uint32_t> in_fds, bool is_pty);
  FdPump(const FdPump&) = delete;
  FdPump& operator=(const FdPump&) = delete;

  Status Start();

  // Stream (channel, stream) has room again in the mux.
  void OnMuxWritable();
  // Data from the peer for input stream `stream`.
  void Deliver(uint32_t stream, std::string_view bytes);
  // The peer ended input stream `stream`.
  void DeliverEof(uint32_t stream);

  uint32_t channel() const { return channel_; }
  int fd() const { return fd_.get(); }
  bool reads() const { return !out_fds_.empty() || is_pty_; }
  bool read_done() const { return read_done_; }
  const std::vector<uint32_t>& in_fds() const { return in_fds_; }
  const std::vector<uint32_t>& out_fds() const { return out_fds_; }

  // Stops the pump, drops unwritten input (returning its credit) and hands
  // the object to libuv, which deletes it in the close callback.
  void Close();

 private:
  struct Chunk {
    uint32_t stream;
    std::string bytes;
    size_t off = 0;
  };

  ~FdPump() = default;  // only through Close()

  static void PollCallback(uv_poll_t* handle, int status, int events) noexcept;
  static void CloseCallback(uv_handle_t* handle) noexcept;

  void DoRead();
  void DoWrite();
  void FinishRead();
  void DropInput();
  void UpdatePoll();
  void MaybeFinished();

  uv_poll_t poll_{};
  uv_loop_t* loop_;
  proto::Mux* mux_;
  FdPumpDelegate* delegate_;
  uint32_t channel_;
  UniqueFd fd_;
  std::vector<uint32_t> out_fds_;
  std::vector<uint32_t> in_fds_;
  bool is_pty_;
  bool started_ = false;
  bool finished_ = false;  // OnPumpFinished was called
  bool closing_ = false;   // Close() was called; waiting for the close callback

  // Output side.
  bool read_done_ = false;
  std::string unsent_;  // read from the child, not yet taken by the mux

  // Input side.
  std::deque<Chunk> to_write_;
  size_t in_eofs_ = 0;         // Eofs received on in_fds_
  bool input_closed_ = false;  // no more writes (Eof done or write failed)

  int poll_events_ = 0;
};

}  // namespace mproxy::agent
