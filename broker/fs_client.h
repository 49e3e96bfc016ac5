// FsClient: the workspace's FsBackend over the agent link. FUSE threads hand
// it requests; the loop thread sends them and runs the replies' callbacks.
// The requests queued when an Exec is sent leave before it (a write the
// program made before starting a command reaches the agent first).
#pragma once

#include <uv.h>

#include <deque>
#include <mutex>
#include <utility>

#include "broker/agent_link.h"
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

  // Loop thread. Later requests go to `link`. Handles are tagged with the
  // link they were opened on (in bits 40 and up, the agent's own ids stay
  // far below): a request with a handle of an earlier link fails with EIO
  // without reaching the agent (releasing one succeeds), since the new agent
  // never opened it and may have given the same id to another file.
  void SetLink(AgentLink* link);

  // Loop thread. Callbacks of requests still in flight are dropped (their
  // FUSE requests end when the mount goes away); later Submits get EIO at
  // once.
  void Close();

 private:
  struct Pending {
    proto::FsOpRequest request;
    Done done;
  };
  static void OnAsync(uv_async_t* h) noexcept;
  void SendQueued();

  uv_loop_t* loop_;
  AgentLink* link_;
  uint64_t generation_ = 0;  // links replaced so far
  std::shared_ptr<spdlog::logger> log_;
  uv_async_t* async_ = nullptr;  // freed in its close callback
  // Bumped by Close(): replies to requests sent before are dropped.
  std::shared_ptr<bool> open_ = std::make_shared<bool>(true);

  std::mutex mu_;  // guards queue_ and closed_; leaf lock
  std::deque<Pending> queue_;
  bool closed_ = false;
};

}  // namespace mproxy::broker
