// FdPump: a uv_poll on one child fd, reading into the mux and writing the
// peer's data out, returning credit only for bytes the fd accepted.
#include "agent/fd_pump.h"

#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/log.h"

namespace mproxy::agent {
namespace {

// Reads per readable event before yielding to other handles, so one busy
// child cannot starve the loop.
constexpr int kReadsPerEvent = 4;
constexpr size_t kReadSize = 64 * 1024;

}  // namespace

FdPump::FdPump(uv_loop_t* loop, proto::Mux* mux, FdPumpDelegate* delegate, uint32_t channel,
               UniqueFd fd, std::vector<uint32_t> out_fds, std::vector<uint32_t> in_fds,
               bool is_pty)
    : mux_(mux),
      delegate_(delegate),
      channel_(channel),
      fd_(std::move(fd)),
      out_fds_(std::move(out_fds)),
      in_fds_(std::move(in_fds)),
      is_pty_(is_pty) {
  poll_.data = this;
  loop_ = loop;
}

Status FdPump::Start() {
  if (int rc = uv_poll_init(loop_, &poll_, fd_.get()); rc < 0) {
    return Error(std::string("uv_poll_init: ") + uv_strerror(rc));
  }
  started_ = true;
  UpdatePoll();
  MaybeFinished();
  return Ok();
}

void FdPump::PollCallback(uv_poll_t* handle, int status, int events) noexcept {
  auto* self = static_cast<FdPump*>(handle->data);
  if (self->closing_) return;
  if (status < 0) {
    // libuv stopped the poll (POLLERR): let the syscalls below tell what
    // happened; UpdatePoll restarts it if there is still something to wait for.
    self->poll_events_ = 0;
    events = UV_READABLE | UV_WRITABLE;
  }
  if ((events & UV_WRITABLE) != 0) self->DoWrite();
  if (self->closing_ || self->finished_) return;
  if ((events & UV_READABLE) != 0 && self->reads() && !self->read_done_ && self->unsent_.empty()) {
    self->DoRead();
    return;
  }
  self->UpdatePoll();
}

void FdPump::DoRead() {
  char buf[kReadSize];
  for (int i = 0; i < kReadsPerEvent && unsent_.empty() && !read_done_; ++i) {
    ssize_t n = read(fd_.get(), buf, sizeof buf);
    if (n > 0) {
      if (out_fds_.empty()) continue;  // a pty nobody asked to see: drained
      std::string_view bytes(buf, static_cast<size_t>(n));
      size_t took = mux_->Write(channel_, out_fds_[0], bytes);
      if (took < bytes.size()) unsent_.assign(bytes.substr(took));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    // 0 is end of file; EIO is how a pty master says the slave side is gone.
    if (n < 0 && !(is_pty_ && errno == EIO)) {
      Logf(LogLevel::kWarn, "channel %u: read: %s", channel_, std::strerror(errno));
    }
    Logf(LogLevel::kTrace, "channel %u: fd %d at end of output (%s)", channel_, fd_.get(),
         n == 0 ? "eof" : std::strerror(errno));
    FinishRead();
  }
  delegate_->OnPumpOutput();
  if (closing_) return;
  UpdatePoll();
  MaybeFinished();
}

void FdPump::FinishRead() {
  read_done_ = true;
  for (uint32_t fd : out_fds_) mux_->WriteEof(channel_, fd);
  // Nobody is left on a pty's slave side to read input.
  if (is_pty_) DropInput();
}

void FdPump::OnMuxWritable() {
  if (closing_ || unsent_.empty()) return;
  size_t took = mux_->Write(channel_, out_fds_[0], unsent_);
  unsent_.erase(0, took);
  UpdatePoll();
}

void FdPump::Deliver(uint32_t stream, std::string_view bytes) {
  if (closing_ || input_closed_) {
    mux_->Consume(channel_, stream, bytes.size());
    return;
  }
  to_write_.push_back(Chunk{stream, std::string(bytes)});
  DoWrite();
}

void FdPump::DeliverEof(uint32_t /*stream*/) {
  ++in_eofs_;
  if (!closing_) DoWrite();
}

void FdPump::DoWrite() {
  bool consumed = false;
  while (!to_write_.empty() && !input_closed_) {
    Chunk& c = to_write_.front();
    ssize_t n = write(fd_.get(), c.bytes.data() + c.off, c.bytes.size() - c.off);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      // The child closed its end (EPIPE) or the pty is gone: the rest of
      // the input has nowhere to go.
      Logf(LogLevel::kDebug, "channel %u: write: %s", channel_, std::strerror(errno));
      DropInput();
      break;
    }
    // Credit goes back only now, once the child's pipe holds the bytes.
    mux_->Consume(channel_, c.stream, static_cast<size_t>(n));
    consumed = true;
    c.off += static_cast<size_t>(n);
    if (c.off == c.bytes.size()) to_write_.pop_front();
  }
  if (to_write_.empty() && !input_closed_ && !in_fds_.empty() && in_eofs_ >= in_fds_.size()) {
    input_closed_ = true;
    if (is_pty_) {
      // A terminal has no end of input: type the EOF character, as a user
      // would, instead of hanging up the child's terminal.
      struct termios t {};
      char eof = tcgetattr(fd_.get(), &t) == 0 ? static_cast<char>(t.c_cc[VEOF]) : '\x04';
      (void)!write(fd_.get(), &eof, 1);
    }
  }
  // Consume may have queued a Window: the peer is waiting for that credit.
  if (consumed) delegate_->OnPumpOutput();
  if (closing_) return;
  UpdatePoll();
  MaybeFinished();
}

void FdPump::DropInput() {
  for (const Chunk& c : to_write_) mux_->Consume(channel_, c.stream, c.bytes.size() - c.off);
  to_write_.clear();
  input_closed_ = true;
}

void FdPump::UpdatePoll() {
  if (closing_ || !started_) return;
  int events = 0;
  if (reads() && !read_done_ && unsent_.empty()) events |= UV_READABLE;
  if (!to_write_.empty() && !input_closed_) events |= UV_WRITABLE;
  if (events == poll_events_) return;
  poll_events_ = events;
  if (events == 0) {
    uv_poll_stop(&poll_);
  } else {
    uv_poll_start(&poll_, events, PollCallback);
  }
}

void FdPump::MaybeFinished() {
  if (finished_ || closing_ || !started_) return;
  bool output_done = !reads() || read_done_;
  bool input_done = in_fds_.empty() || input_closed_;
  if (!output_done || !input_done) return;
  finished_ = true;
  Logf(LogLevel::kTrace, "channel %u: fd %d finished", channel_, fd_.get());
  delegate_->OnPumpFinished(this);  // may Close() this pump: nothing after
}

void FdPump::Close() {
  if (closing_) return;
  DropInput();
  closing_ = true;
  if (!started_) {
    delete this;
    return;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), CloseCallback);
}

void FdPump::CloseCallback(uv_handle_t* handle) noexcept {
  delete static_cast<FdPump*>(handle->data);  // closes the fd
}

}  // namespace mproxy::agent
