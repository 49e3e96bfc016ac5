// A uv_poll on the job leader's pipe; the reads themselves are plain read(2).
#include "agent/job_watch.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace mproxy::agent {

JobWatch::JobWatch(uv_loop_t* loop, UniqueFd events, std::function<void(const JobEvent&)> on_event)
    : loop_(loop), events_(std::move(events)), on_event_(std::move(on_event)) {}

JobWatch::~JobWatch() {
  if (poll_ == nullptr) return;
  uv_poll_stop(poll_);
  poll_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(poll_),
           [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_poll_t*>(h); });
}

Status JobWatch::Start() {
  auto poll = std::make_unique<uv_poll_t>();
  if (int rc = uv_poll_init(loop_, poll.get(), events_.get()); rc != 0) {
    return Error(std::string("uv_poll_init: ") + uv_strerror(rc));
  }
  poll_ = poll.release();
  poll_->data = this;
  if (int rc = uv_poll_start(poll_, UV_READABLE, &JobWatch::OnReadable); rc != 0) {
    return Error(std::string("uv_poll_start: ") + uv_strerror(rc));
  }
  return Ok();
}

void JobWatch::OnReadable(uv_poll_t* handle, int /*status*/, int /*events*/) noexcept {
  auto* self = static_cast<JobWatch*>(handle->data);
  if (self != nullptr) self->Drain();
}

void JobWatch::Drain() {
  char buf[256];
  for (;;) {
    ssize_t n = read(events_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // End of file: the leader is gone; nothing more will come.
      if (n == 0 && poll_ != nullptr) uv_poll_stop(poll_);
      return;
    }
    partial_.append(buf, static_cast<size_t>(n));
    size_t whole = partial_.size() / sizeof(JobEvent) * sizeof(JobEvent);
    std::string events = partial_.substr(0, whole);
    partial_.erase(0, whole);
    for (size_t at = 0; at < events.size(); at += sizeof(JobEvent)) {
      JobEvent e;
      std::memcpy(&e, events.data() + at, sizeof e);
      on_event_(e);
    }
  }
}

}  // namespace mproxy::agent
