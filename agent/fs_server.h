// FsServer: serves FsRequest frames. Requests are checked on the loop thread,
// run on libuv's thread pool, and answered from the loop thread as each one
// finishes, so replies may leave in any order (the peer matches them by id).
// An ordered WRITE (write-behind) runs on the loop thread as it arrives, so
// every request after it finds its bytes written. Metadata operations run
// there too while they take under kQuickLimit (a local filesystem); after
// kSlowOpsLimit slower ones (a network filesystem, a cold disk) they all go
// to the pool from then on, so the loop keeps Exec streams moving.
// Finished replies wait here until the output has room, so a burst of large
// READ replies is paced by what the peer actually reads.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <unordered_set>

#include "agent/fs_handles.h"
#include "agent/fs_ops.h"
#include "proto/fs.h"
#include "proto/messages.h"

namespace mproxy::agent {

// Owned by the Session; every method runs on the loop thread. The server
// must outlive its work in flight: uv_run does not return before every
// queued request has finished, so a server that lives as long as the loop
// runs is enough.
class FsServer {
 public:
  using ReplyFn = std::function<void(proto::FsReply&&)>;
  using RoomFn = std::function<bool()>;

  // `reply` is called on the loop thread with each answer, but only while
  // `room` says the output can take one more.
  FsServer(uv_loop_t* loop, mode_t umask, ReplyFn reply, RoomFn room);
  FsServer(const FsServer&) = delete;
  FsServer& operator=(const FsServer&) = delete;
  ~FsServer();

  // Answers at once when the request is malformed (EINVAL), names an
  // unknown op (ENOSYS) or would exceed the in-flight limits (EAGAIN);
  // otherwise queues it.
  void Handle(proto::FsRequest&& req);

  // Hands finished replies to `reply` while `room` holds. The owner calls
  // it whenever its output has drained.
  void Deliver();

  // The session ends: requests not started yet are cancelled, nothing more
  // is answered, and every handle is closed (a handle still used by a
  // running request closes when that request is done).
  void Shutdown();

  // Requests accepted and not yet answered (running, queued or waiting for
  // output room).
  size_t in_flight() const { return works_.size() + done_.size(); }
  size_t open_handles() const { return handles_.size(); }

 private:
  struct Work {
    uv_work_t req{};
    FsServer* server = nullptr;
    uint64_t id = 0;
    size_t cost = 0;  // bytes counted against kFsMaxInFlightBytes
    proto::FsOpRequest op;
    proto::FsReply reply;
  };

  static constexpr std::chrono::milliseconds kQuickLimit{2};
  static constexpr int kSlowOpsLimit = 3;
  // Runs `op` on the loop thread and queues its reply.
  void RunHere(uint64_t id, const proto::FsOpRequest& op);
  static void WorkCallback(uv_work_t* req) noexcept;
  static void AfterWorkCallback(uv_work_t* req, int status) noexcept;
  void Finished(Work* w, int status);

  uv_loop_t* loop_;
  ReplyFn reply_;
  RoomFn room_;
  FsHandles handles_;
  FsOps ops_;
  std::unordered_set<Work*> works_;         // queued or running
  std::deque<std::unique_ptr<Work>> done_;  // finished, waiting for output room
  size_t in_flight_bytes_ = 0;  // cost of works_ and done_
  bool quick_inline_ = true;    // metadata operations run on the loop
  int slow_ops_ = 0;            // of them, those over kQuickLimit
  bool shut_down_ = false;
};

}  // namespace mproxy::agent
