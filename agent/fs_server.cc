// FsServer: FsRequest -> uv_queue_work -> FsOps on a worker -> FsReply.
#include "agent/fs_server.h"

#include <cerrno>
#include <chrono>
#include <memory>
#include <type_traits>
#include <utility>

#include "agent/log.h"

namespace mproxy::agent {
namespace {

// The bytes a request holds or will produce while it is in flight.
size_t CostOf(const proto::FsOpRequest& op) {
  return std::visit(
      [](const auto& r) -> size_t {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, proto::FsReadRequest>) {
          return r.size;
        } else if constexpr (std::is_same_v<T, proto::FsOpenRequest>) {
          return r.read_ahead;
        } else if constexpr (std::is_same_v<T, proto::FsWriteRequest>) {
          return r.data.size();
        } else if constexpr (std::is_same_v<T, proto::FsReaddirRequest> ||
                             std::is_same_v<T, proto::FsListdirRequest>) {
          return r.max_bytes != 0 ? r.max_bytes : proto::kFsDefaultReaddirBytes;
        } else {
          return 0;
        }
      },
      op);
}

// Metadata operations, which take microseconds on a local filesystem: the
// loop runs them itself while they stay quick (FsServer::quick_inline_).
// READ, unordered WRITE, READDIR, LISTDIR, FSYNC and FALLOCATE move data or
// may take long, and always go to the pool.
bool Quick(const proto::FsOpRequest& op) {
  switch (proto::OpOf(op)) {
    case proto::FsOp::kGetattr:
    case proto::FsOp::kOpendir:
    case proto::FsOp::kReleasedir:
    case proto::FsOp::kOpen:
    case proto::FsOp::kRelease:
    case proto::FsOp::kMkdir:
    case proto::FsOp::kMknod:
    case proto::FsOp::kUnlink:
    case proto::FsOp::kRmdir:
    case proto::FsOp::kRename:
    case proto::FsOp::kSymlink:
    case proto::FsOp::kReadlink:
    case proto::FsOp::kLink:
    case proto::FsOp::kSetattr:
    case proto::FsOp::kStatfs:
    case proto::FsOp::kAccess:
    case proto::FsOp::kGetxattr:
    case proto::FsOp::kSetxattr:
    case proto::FsOp::kListxattr:
    case proto::FsOp::kRemovexattr:
      return true;
    default:
      return false;
  }
}

}  // namespace

FsServer::FsServer(uv_loop_t* loop, mode_t umask, ReplyFn reply, RoomFn room)
    : loop_(loop),
      reply_(std::move(reply)),
      room_(std::move(room)),
      handles_(proto::kFsMaxHandles),
      ops_(&handles_, umask) {}

FsServer::~FsServer() {
  // Only reachable with work in flight if the loop was abandoned; the
  // workers would then use freed memory, so make that loud.
  if (!works_.empty()) {
    Logf(LogLevel::kError, "file server destroyed with %zu requests in flight", works_.size());
  }
}

void FsServer::Handle(proto::FsRequest&& req) {
  if (shut_down_) return;
  uint64_t id = req.id;
  uint32_t op_number = req.op;
  auto parsed = proto::ParseFsRequest(std::move(req));
  if (!parsed) {
    Logf(LogLevel::kDebug, "FsRequest %llu: %s", static_cast<unsigned long long>(id),
         parsed.error().message().c_str());
    reply_(proto::MakeFsError(id, parsed.error().sys_errno()));
    return;
  }
  auto* write = std::get_if<proto::FsWriteRequest>(&*parsed);
  const bool here = (write != nullptr && write->ordered) || (quick_inline_ && Quick(*parsed));
  // What runs here holds no bytes once it has run, but its reply may wait
  // for output room: it counts against the number of requests in flight.
  size_t cost = here ? 0 : CostOf(*parsed);
  if (in_flight() >= proto::kFsMaxInFlight ||
      in_flight_bytes_ + cost > proto::kFsMaxInFlightBytes) {
    Logf(LogLevel::kWarn, "FsRequest %llu (%s): %zu requests in flight, refused with EAGAIN",
         static_cast<unsigned long long>(id), proto::FsOpName(op_number), in_flight());
    reply_(proto::MakeFsError(id, EAGAIN));
    return;
  }
  if (here) {
    // An ordered write must run before whatever arrives next. A quick one
    // costs less here than the two thread wake-ups of the pool, which are
    // most of a round trip's time on the agent's side.
    RunHere(id, *parsed);
    return;
  }
  auto w = std::make_unique<Work>();
  w->req.data = w.get();
  w->server = this;
  w->id = id;
  w->cost = cost;
  w->op = std::move(*parsed);
  int rc = uv_queue_work(loop_, &w->req, WorkCallback, AfterWorkCallback);
  if (rc < 0) {
    Logf(LogLevel::kError, "FsRequest %llu: uv_queue_work: %s", static_cast<unsigned long long>(id),
         uv_strerror(rc));
    reply_(proto::MakeFsError(id, EIO));
    return;
  }
  in_flight_bytes_ += cost;
  works_.insert(w.release());
}

void FsServer::RunHere(uint64_t id, const proto::FsOpRequest& op) {
  auto w = std::make_unique<Work>();
  w->id = id;
  const auto start = std::chrono::steady_clock::now();
  w->reply = ops_.Run(id, op);
  const auto took = std::chrono::steady_clock::now() - start;
  // A few slow ones, so that one preemption of this process does not count.
  if (quick_inline_ && took > kQuickLimit && ++slow_ops_ == kSlowOpsLimit) {
    quick_inline_ = false;
    Logf(LogLevel::kInfo,
         "a %s took %lld us on the loop: file operations run on worker threads from now on",
         proto::FsOpName(static_cast<uint32_t>(proto::OpOf(op))),
         static_cast<long long>(
             std::chrono::duration_cast<std::chrono::microseconds>(took).count()));
  }
  done_.push_back(std::move(w));
  Deliver();
}

void FsServer::WorkCallback(uv_work_t* req) noexcept {
  auto* w = static_cast<Work*>(req->data);
  w->reply = w->server->ops_.Run(w->id, w->op);
  w->op = proto::FsOpRequest();  // free WRITE data on the worker, not the loop
}

void FsServer::AfterWorkCallback(uv_work_t* req, int status) noexcept {
  auto* w = static_cast<Work*>(req->data);
  w->server->Finished(w, status);
}

void FsServer::Finished(Work* w, int status) {
  std::unique_ptr<Work> owned(w);
  works_.erase(w);
  if (shut_down_ || status == UV_ECANCELED) {
    in_flight_bytes_ -= w->cost;
    if (shut_down_) handles_.Clear();  // an OPEN that finished after the session ended
    return;
  }
  done_.push_back(std::move(owned));
  Deliver();
}

void FsServer::Deliver() {
  while (!done_.empty() && !shut_down_ && room_()) {
    std::unique_ptr<Work> w = std::move(done_.front());
    done_.pop_front();
    in_flight_bytes_ -= w->cost;
    reply_(std::move(w->reply));
  }
}

void FsServer::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  for (Work* w : works_) {
    // Fails with UV_EBUSY for running requests; those finish on their own.
    (void)uv_cancel(reinterpret_cast<uv_req_t*>(&w->req));
  }
  for (const auto& w : done_) in_flight_bytes_ -= w->cost;
  done_.clear();
  size_t open = handles_.size();
  handles_.Clear();
  if (open != 0) Logf(LogLevel::kDebug, "closed %zu file handles at session end", open);
}

}  // namespace mproxy::agent
