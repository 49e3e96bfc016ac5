// FsClient: the workspace's FsBackend over the agent link. FUSE threads hand
// it requests; the loop thread sends them and runs the replies' callbacks.
// The requests queued when an Exec is sent leave before it (a write the
// program made before starting a command reaches the agent first).
#pragma once

#include <uv.h>

#include <chrono>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include "broker/agent_link.h"
#include "broker/loop_wakeup.h"
#include "fuse/workspace_fs.h"

namespace mproxy::broker {

// Owned by the session, which creates it on the loop thread and must Close()
// it there before destroying the workspaces that use it (and before the
// link). Submit() is for any thread.
class FsClient : public fuse::FsBackend {
 public:
  FsClient(uv_loop_t* loop, AgentLink* link);
  ~FsClient() override;
  FsClient(const FsClient&) = delete;
  FsClient& operator=(const FsClient&) = delete;

  void Submit(proto::FsOpRequest request, Done done) override;
  // Held until the next Submit, an Exec, SendNow(), kLaterBytes of them, or
  // kLaterDelay: a RELEASE or a write-behind then shares the remote side's
  // wake-up with the request that follows it.
  void SubmitLater(proto::FsOpRequest request, Done done) override;
  void SendNow() override;

  // Loop thread. Later requests go to `link`. Handles are tagged with the
  // link they were opened on (in bits 40 and up, the agent's own ids stay
  // far below): a request with a handle of an earlier link fails with EIO
  // without reaching the agent (releasing one succeeds), since the new agent
  // never opened it and may have given the same id to another file.
  void SetLink(AgentLink* link);

  // Loop thread. Sends what SubmitLater still holds; callbacks of requests
  // in flight are dropped (their FUSE requests end when the mount goes
  // away); later Submits get EIO at once.
  void Close();

 private:
  struct Pending {
    proto::FsOpRequest request;
    Done done;
  };
  static constexpr auto kLaterDelay = std::chrono::milliseconds(1);
  static constexpr size_t kLaterBytes = 256 * 1024;
  // Queues `p`; `urgent`: it is to leave at once, with everything before it.
  void Queue(Pending p, bool urgent);
  // Loop thread. Sends the queue, unless it holds only SubmitLater requests
  // and `force` is false: then the timer sends them after kLaterDelay.
  void SendQueued(bool force);
  // One batch of the queue; false when nothing was sent (held, or closed).
  bool SendBatch(bool force);
  bool sending_ = false;         // loop thread: inside SendQueued
  bool resend_pending_ = false;  // SendQueued was called meanwhile
  bool resend_ = false;          // ... with force

  uv_loop_t* loop_;
  std::thread::id loop_thread_;  // the constructor's
  bool OnLoop() const { return std::this_thread::get_id() == loop_thread_; }
  AgentLink* link_;
  uint64_t generation_ = 0;  // links replaced so far
  std::shared_ptr<spdlog::logger> log_;
  LoopWakeup wake_;                    // runs SendQueued(false)
  uv_timer_t* later_timer_ = nullptr;  // freed in its close callback
  // Bumped by Close(): replies to requests sent before are dropped.
  std::shared_ptr<bool> open_ = std::make_shared<bool>(true);

  std::mutex mu_;  // guards what follows; leaf lock
  std::deque<Pending> queue_;
  bool urgent_ = false;       // queue_ holds a request that is to leave now
  size_t later_bytes_ = 0;    // WRITE data among the held requests
  bool timer_armed_ = false;  // the loop holds queue_ until later_timer_
  bool closed_ = false;
};

}  // namespace mproxy::broker
