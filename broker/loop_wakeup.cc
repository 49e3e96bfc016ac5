// LoopWakeup: an eventfd watched by uv_poll, written once per batch.
#include "broker/loop_wakeup.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace mproxy::broker {

LoopWakeup::~LoopWakeup() { Close(); }

Status LoopWakeup::Start(uv_loop_t* loop, std::function<void()> on_wake) {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return Error::FromErrno("eventfd", errno);
  fd_.Reset(fd);
  on_wake_ = std::move(on_wake);
  poll_ = new uv_poll_t;
  if (int rc = uv_poll_init(loop, poll_, fd); rc < 0) {
    delete poll_;
    poll_ = nullptr;
    return Error(std::string("uv_poll_init: ") + uv_strerror(rc));
  }
  poll_->data = this;
  uv_poll_start(poll_, UV_READABLE, &LoopWakeup::OnPoll);
  return Ok();
}

void LoopWakeup::Wake() {
  // Only the first Wake() of a batch writes; the loop clears the flag before
  // it looks at the work, so work added after that wakes it again.
  if (signalled_.exchange(true, std::memory_order_acq_rel)) return;
  const std::uint64_t one = 1;
  while (::write(fd_.get(), &one, sizeof one) < 0 && errno == EINTR) {
  }
}

void LoopWakeup::OnPoll(uv_poll_t* handle, int status, int /*events*/) noexcept {
  auto* self = static_cast<LoopWakeup*>(handle->data);
  if (self == nullptr) return;
  std::uint64_t count;
  while (::read(self->fd_.get(), &count, sizeof count) > 0) {
  }
  self->signalled_.store(false, std::memory_order_release);
  if (status >= 0 || status == UV_EAGAIN) self->on_wake_();
}

void LoopWakeup::Close() {
  if (poll_ == nullptr) return;
  poll_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(poll_),
           [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_poll_t*>(h); });
  poll_ = nullptr;
  // The eventfd stays open until this object goes: a Wake() racing with
  // Close() writes to it harmlessly.
}

}  // namespace mproxy::broker
