// Workspaces: the session's remote directories mounted as local FUSE
// filesystems (the working directory by default, plus every -v mapping),
// their FsClient, and the cache revalidation after each remote command.
#pragma once

#include <uv.h>

#include <functional>
#include <optional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "broker/agent_link.h"
#include "broker/config.h"
#include "broker/fs_client.h"
#include "fuse/workspace_fs.h"
#include "ns/bwrap_command.h"

namespace mproxy::broker {

// What every workspace mount shares: whose files show as the local user's,
// and which extended attributes pass.
struct WorkspaceIdentity {
  bool owner_local = true;
  bool xattrs_all = false;
  uint32_t remote_uid = 0;
  uint32_t remote_gid = 0;
  bool remote_ids_known = false;  // false: no mapping (an agent that did not say)
};

// Owned by the session; loop thread only. Destroy (or Close) before the link.
class Workspaces {
 public:
  Workspaces(uv_loop_t* loop, AgentLink* link, std::string runtime_dir, std::string host_label);
  ~Workspaces();
  Workspaces(const Workspaces&) = delete;
  Workspaces& operator=(const Workspaces&) = delete;

  // Checks that each mapping's remote side is a directory and its local side
  // exists, then mounts them under the runtime directory. `mappings` have
  // their remote "~" resolved already. Runs the loop until the agent has
  // answered (call it before anything else uses the loop). The first
  // problem is the error, naming the directory.
  // On failure `*failed` (when given) is the index of the mapping at fault.
  Status Mount(const std::vector<Mount>& mappings, const WorkspaceIdentity& who,
               size_t* failed = nullptr);

  // Where each mount must appear in the program's namespace.
  std::vector<ns::BindMount> binds() const;
  bool empty() const { return mounts_.empty(); }

  // Makes every mount's kernel caches forget what they may still trust, then
  // runs `done` on the loop thread: at once when nothing is cached, and at
  // the latest after a few seconds (a stuck invalidation must not hold a
  // command's exit).
  void Revalidate(std::function<void()> done);

  // Stops the file operations, then unmounts. Idempotent.
  void Close();

  // After a reconnect: later file operations go to `link`, and file handles
  // opened before it fail with EIO (the new agent never opened them).
  void SetLink(AgentLink* link);

 private:
  struct Waiting;
  static void OnAsync(uv_async_t* h) noexcept;
  void RunFinished();

  uv_loop_t* loop_;
  AgentLink* link_;
  std::string runtime_dir_;
  std::string host_label_;
  std::unique_ptr<FsClient> client_;
  std::vector<std::unique_ptr<fuse::Workspace>> mounts_;
  // The loop serves each mount's /dev/fuse itself (no FUSE worker threads:
  // a request reaches the loop, which sends it on, without a thread wake-up
  // in between). One per mount, freed in their close callbacks.
  std::vector<uv_poll_t*> fuse_polls_;
  static void OnFuseReadable(uv_poll_t* h, int status, int events) noexcept;
  std::vector<std::string> locals_;       // where each of mounts_ is shown
  std::vector<std::string> mountpoints_;  // removed after unmounting
  uv_async_t* async_ = nullptr;           // freed in its close callback

  // Revalidations whose invalidations were delivered, posted by FUSE
  // notifier threads for the loop thread.
  std::mutex mu_;
  std::vector<std::shared_ptr<Waiting>> finished_;
};

}  // namespace mproxy::broker
