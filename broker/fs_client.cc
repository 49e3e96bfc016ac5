// FsClient: FUSE threads -> queue -> uv_async -> AgentLink::SendFs.
#include "broker/fs_client.h"

#include <cerrno>

#include "broker/logging.h"

namespace mproxy::broker {

FsClient::FsClient(uv_loop_t* loop, AgentLink* link)
    : loop_(loop), link_(link), log_(Log("fuse")) {
  async_ = new uv_async_t;
  uv_async_init(loop_, async_, &FsClient::OnAsync);
  async_->data = this;
}

FsClient::~FsClient() { Close(); }

void FsClient::Submit(proto::FsOpRequest request, Done done) {
  {
    std::lock_guard lock(mu_);
    if (!closed_) {
      queue_.push_back({std::move(request), std::move(done)});
      // One wake-up sends the whole batch; uv_async_send coalesces.
      if (queue_.size() == 1) uv_async_send(async_);
      return;
    }
  }
  done(proto::MakeFsError(0, EIO));
}

void FsClient::OnAsync(uv_async_t* h) noexcept {
  auto* self = static_cast<FsClient*>(h->data);
  if (self != nullptr) self->SendQueued();
}

void FsClient::SendQueued() {
  std::deque<Pending> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(queue_);
  }
  for (auto& p : batch) {
    if (log_->should_log(spdlog::level::trace)) {
      log_->trace("file operation {}", proto::DescribeFsRequest(p.request));
    }
    proto::FsRequest wire = proto::MakeFsRequest(0, std::move(p.request));
    link_->SendFs(std::move(wire), [open = open_, done = std::move(p.done)](proto::FsReply r) {
      if (*open) done(std::move(r));
    });
  }
}

void FsClient::Close() {
  std::deque<Pending> dropped;
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
    dropped.swap(queue_);
  }
  *open_ = false;
  async_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(async_),
           [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_async_t*>(h); });
  async_ = nullptr;
}

}  // namespace mproxy::broker
