// FsClient: FUSE threads -> queue -> uv_async -> AgentLink::SendFs.
#include "broker/fs_client.h"

#include <cerrno>

#include "broker/logging.h"

namespace mproxy::broker {
namespace {

// Handles carry the generation of the link they were opened on above this
// bit; the agent's own ids count up from 1 and never get near it.
constexpr int kGenerationShift = 40;
constexpr uint64_t kIdMask = (uint64_t{1} << kGenerationShift) - 1;

// The request's handle field, if its op has one.
uint64_t* HandleOf(proto::FsOpRequest& request) {
  return std::visit(
      [](auto& r) -> uint64_t* {
        if constexpr (requires { r.fh.has_value(); }) {
          return r.fh ? &*r.fh : nullptr;
        } else if constexpr (requires { r.fh + 0; }) {
          return &r.fh;
        } else {
          return nullptr;
        }
      },
      request);
}

}  // namespace

FsClient::FsClient(uv_loop_t* loop, AgentLink* link)
    : loop_(loop), link_(link), log_(Log("fuse")) {
  async_ = new uv_async_t;
  uv_async_init(loop_, async_, &FsClient::OnAsync);
  async_->data = this;
  link_->SetBeforeExec([this] { SendQueued(); });
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
    const proto::FsOp op = proto::OpOf(p.request);
    if (uint64_t* fh = HandleOf(p.request)) {
      if ((*fh >> kGenerationShift) != generation_) {
        // Opened on a connection that is gone: its agent took it along.
        bool release = op == proto::FsOp::kRelease || op == proto::FsOp::kReleasedir;
        p.done(proto::MakeFsError(0, release ? 0 : EIO));
        continue;
      }
      *fh &= kIdMask;
    }
    const bool opens = op == proto::FsOp::kOpen || op == proto::FsOp::kOpendir;
    proto::FsRequest wire = proto::MakeFsRequest(0, std::move(p.request));
    link_->SendFs(std::move(wire), [open = open_, done = std::move(p.done), opens,
                                    generation = generation_](proto::FsReply r) {
      if (!*open) return;
      if (opens && r.err == 0) {
        auto it = r.fields.find(1);  // FsOpenReply / FsOpendirReply: fh
        if (it != r.fields.end()) {
          if (auto* fh = std::get_if<uint64_t>(&it->second)) *fh |= generation << kGenerationShift;
        }
      }
      done(std::move(r));
    });
  }
}

void FsClient::SetLink(AgentLink* link) {
  link_ = link;
  ++generation_;
  link_->SetBeforeExec([this] { SendQueued(); });
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
  link_->SetBeforeExec(nullptr);
  async_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(async_),
           [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_async_t*>(h); });
  async_ = nullptr;
}

}  // namespace mproxy::broker
