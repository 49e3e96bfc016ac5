// FsClient: FUSE threads -> queue -> uv_async -> AgentLink::SendFs.
#include "broker/fs_client.h"

#include <cerrno>
#include <thread>

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
    : loop_(loop), loop_thread_(std::this_thread::get_id()), link_(link), log_(Log("fuse")) {
  if (Status s = wake_.Start(loop_, [this] { SendQueued(false); }); !s.ok()) {
    log_->error("workspace: {}", s.error().message());
  }
  later_timer_ = new uv_timer_t;
  uv_timer_init(loop_, later_timer_);
  later_timer_->data = this;
  link_->SetBeforeExec([this] { SendQueued(true); });
}

FsClient::~FsClient() { Close(); }

void FsClient::Submit(proto::FsOpRequest request, Done done) {
  Queue({std::move(request), std::move(done)}, true);
}

void FsClient::SubmitLater(proto::FsOpRequest request, Done done) {
  Queue({std::move(request), std::move(done)}, false);
}

void FsClient::Queue(Pending p, bool urgent) {
  // The loop itself (which serves the workspace's FUSE requests) sends at
  // once, without waking itself through the eventfd.
  const bool on_loop = OnLoop();
  bool wake = false;
  {
    std::unique_lock lock(mu_);
    if (closed_) {
      lock.unlock();
      return p.done(proto::MakeFsError(0, EIO));
    }
    if (auto* w = std::get_if<proto::FsWriteRequest>(&p.request); w && !urgent) {
      later_bytes_ += w->data.size();
      urgent = later_bytes_ >= kLaterBytes;
    }
    queue_.push_back(std::move(p));
    urgent_ = urgent_ || urgent;
    // A held request needs a wake-up too (the loop arms the timer), unless
    // the timer runs already. LoopWakeup makes a batch of them one.
    wake = !on_loop && (urgent || !timer_armed_);
  }
  if (on_loop) return SendQueued(false);
  if (wake) wake_.Wake();
}

void FsClient::SendNow() {
  {
    std::lock_guard lock(mu_);
    if (closed_ || queue_.empty()) return;
    urgent_ = true;
  }
  if (OnLoop()) return SendQueued(false);
  wake_.Wake();
}

void FsClient::SendQueued(bool force) {
  // A reply handled inside this call (EIO at once) may queue more: that is
  // sent after this batch, in order, not from inside it.
  if (sending_) {
    resend_ = resend_ || force;
    resend_pending_ = true;
    return;
  }
  sending_ = true;
  for (;;) {
    resend_pending_ = false;
    resend_ = false;
    if (!SendBatch(force) || !resend_pending_) break;
    force = resend_;
  }
  sending_ = false;
}

bool FsClient::SendBatch(bool force) {
  std::deque<Pending> batch;
  {
    std::lock_guard lock(mu_);
    if (closed_) return false;
    if (!urgent_ && !force && !queue_.empty()) {
      if (!timer_armed_) {
        timer_armed_ = true;
        uv_timer_start(
            later_timer_,
            [](uv_timer_t* t) noexcept {
              if (auto* self = static_cast<FsClient*>(t->data)) self->SendQueued(true);
            },
            kLaterDelay.count(), 0);
      }
      return false;
    }
    batch.swap(queue_);
    urgent_ = false;
    later_bytes_ = 0;
    if (timer_armed_) {
      timer_armed_ = false;
      uv_timer_stop(later_timer_);
    }
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
  return true;
}

void FsClient::SetLink(AgentLink* link) {
  link_ = link;
  ++generation_;
  link_->SetBeforeExec([this] { SendQueued(true); });
}

void FsClient::Close() {
  // What SubmitLater holds still goes (a RELEASE, a write-behind of an mmap);
  // only the answers are dropped.
  SendQueued(true);
  std::deque<Pending> dropped;
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
    dropped.swap(queue_);
  }
  *open_ = false;
  link_->SetBeforeExec(nullptr);
  wake_.Close();
  later_timer_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(later_timer_),
           [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_timer_t*>(h); });
  later_timer_ = nullptr;
}

}  // namespace mproxy::broker
