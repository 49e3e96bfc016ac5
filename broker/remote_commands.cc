// RemoteCommands.
#include "broker/remote_commands.h"

#include <algorithm>

#include "broker/logging.h"

namespace mproxy::broker {

RemoteCommands::RemoteCommands(uv_loop_t* loop, AgentLink* link, LocalRules rules,
                               std::vector<std::string> entrypoint_names)
    : loop_(loop), link_(link), rules_(std::move(rules)),
      entrypoint_names_(std::move(entrypoint_names)) {
  async_ = new uv_async_t;
  uv_async_init(loop_, async_, &RemoteCommands::OnAsync);
  async_->data = this;
}

RemoteCommands::~RemoteCommands() {
  Shutdown();
  async_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(async_),
           [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_async_t*>(h); });
}

void RemoteCommands::Query(std::function<void(Status)> done) {
  link_->QueryPath({}, [this, done = std::move(done)](Result<proto::PathInfo> info) {
    if (!info) return done(info.error());
    if (!info->error.empty() && info->entries.empty()) {
      return done(Error(link_->peer_name() + ": listing the remote PATH: " + info->error));
    }
    Apply(*info);
    done(Ok());
  });
}

void RemoteCommands::Apply(const proto::PathInfo& info) {
  remote_.clear();
  if (!info.home.empty()) home_ = info.home;
  if (info.uid) uid_ = info.uid;
  if (info.gid) gid_ = info.gid;
  for (const auto& e : info.entries) {
    bool keep_local =
        std::find(entrypoint_names_.begin(), entrypoint_names_.end(), e.name) !=
            entrypoint_names_.end() ||
        IsLocalCommand(rules_, e.name) || IsLocalCommand(rules_, e.path);
    if (!keep_local) remote_.insert(e.name);
  }
}

std::vector<std::string> RemoteCommands::Names() const {
  return {remote_.begin(), remote_.end()};
}

Result<std::vector<std::string>> RemoteCommands::RefreshBlocking(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (stopping_) return Error("the session is ending");
  uint64_t seen = generation_;
  requested_ = true;
  uv_async_send(async_);
  if (!cv_.wait_for(lock, timeout, [&] { return stopping_ || generation_ != seen; })) {
    return Error("no answer from " + link_->peer_name() + " within " +
                 std::to_string(timeout.count()) + " ms");
  }
  if (generation_ == seen) return Error("the session is ending");
  return last_;
}

void RemoteCommands::Shutdown() {
  std::lock_guard lock(mu_);
  stopping_ = true;
  cv_.notify_all();
}

void RemoteCommands::OnAsync(uv_async_t* h) noexcept {
  auto* self = static_cast<RemoteCommands*>(h->data);
  if (self == nullptr) return;
  {
    std::lock_guard lock(self->mu_);
    if (!self->requested_ || self->stopping_) return;
    self->requested_ = false;
  }
  Log("session")->debug("re-enumerating the remote PATH after a lookup miss");
  self->Query([self](Status s) {
    std::lock_guard lock(self->mu_);
    self->last_ = s ? Result<std::vector<std::string>>(self->Names())
                    : Result<std::vector<std::string>>(s.error());
    ++self->generation_;
    self->cv_.notify_all();
  });
}

}  // namespace mproxy::broker
