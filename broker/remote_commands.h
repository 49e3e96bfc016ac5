// The remote PATH as the session sees it: the commands the agent enumerated,
// minus the ones kept local, and a bridge that lets
// the stub directory's FUSE threads ask for a fresh enumeration through the
// loop that owns the agent link.
#pragma once

#include <uv.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <set>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "broker/agent_link.h"
#include "broker/config.h"

namespace mproxy::broker {

// Owned by the session. Query(), Names() and home() run on the
// loop thread; RefreshBlocking() on any other thread; Shutdown() on the loop
// thread before the owner destroys anything that may call RefreshBlocking().
class RemoteCommands {
 public:
  RemoteCommands(uv_loop_t* loop, AgentLink* link, LocalRules rules,
                 std::vector<std::string> entrypoint_names);
  ~RemoteCommands();
  RemoteCommands(const RemoteCommands&) = delete;
  RemoteCommands& operator=(const RemoteCommands&) = delete;

  // Asks the agent for its PATH; `done` runs on the loop thread.
  void Query(std::function<void(Status)> done);

  // From a FUSE thread: a new enumeration, waiting at most `timeout` for
  // the loop and the agent. Returns the names to show.
  Result<std::vector<std::string>> RefreshBlocking(std::chrono::milliseconds timeout);

  // Wakes and fails every RefreshBlocking() and refuses new ones.
  void Shutdown();

  // After a reconnect: later queries go to `link`. Loop thread.
  void SetLink(AgentLink* link) { link_ = link; }

  // The remote commands not kept local, sorted.
  std::vector<std::string> Names() const;
  const std::string& home() const { return home_; }
  // The agent's user and group, when it said.
  std::optional<uint32_t> uid() const { return uid_; }
  std::optional<uint32_t> gid() const { return gid_; }

 private:
  static void OnAsync(uv_async_t* h) noexcept;
  void Apply(const proto::PathInfo& info);

  uv_loop_t* loop_;
  AgentLink* link_;
  LocalRules rules_;
  std::vector<std::string> entrypoint_names_;
  std::set<std::string> remote_;  // the names shown in the stub directory
  std::string home_;
  std::optional<uint32_t> uid_;
  std::optional<uint32_t> gid_;
  uv_async_t* async_ = nullptr;  // freed in its close callback

  // Between RefreshBlocking() callers and the loop thread.
  std::mutex mu_;
  std::condition_variable cv_;
  bool requested_ = false;
  bool stopping_ = false;
  uint64_t generation_ = 0;  // bumped when an answer arrives
  Result<std::vector<std::string>> last_{std::vector<std::string>{}};
};

}  // namespace mproxy::broker
