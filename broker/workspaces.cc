// Workspaces: remote directory checks, mounts, revalidation. See workspaces.h.
#include "broker/workspaces.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include "broker/logging.h"

namespace mproxy::broker {
namespace {

// How long a command's exit may wait for the kernel to take the
// invalidations (it normally takes microseconds; a lookup stuck on a dead
// connection could hold one up until keepalives notice).
constexpr uint64_t kRevalidateTimeoutMs = 3000;

}  // namespace

struct Workspaces::Waiting {
  std::function<void()> done;
  std::atomic<size_t> remaining{0};
  std::atomic<bool> async{false};  // some mount finished on another thread
  uv_timer_t* timer = nullptr;
  bool finished = false;  // loop thread
};

Workspaces::Workspaces(uv_loop_t* loop, AgentLink* link, std::string runtime_dir,
                       std::string host_label)
    : loop_(loop),
      link_(link),
      runtime_dir_(std::move(runtime_dir)),
      host_label_(std::move(host_label)),
      client_(std::make_unique<FsClient>(loop, link)) {
  async_ = new uv_async_t;
  uv_async_init(loop_, async_, &Workspaces::OnAsync);
  async_->data = this;
}

Workspaces::~Workspaces() { Close(); }

Status Workspaces::Mount(const std::vector<broker::Mount>& mappings, const WorkspaceIdentity& who,
                         size_t* failed) {
  size_t unused = 0;
  if (failed == nullptr) failed = &unused;
  for (size_t i = 0; i < mappings.size(); ++i) {
    const auto& m = mappings[i];
    *failed = i;
    struct stat st {};
    if (stat(m.local.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Error("workspace " + m.local + ":" + m.remote + ": the local directory " + m.local +
                   " does not exist (it is where the remote one appears; create it first)");
    }
  }
  // Every remote side checked at once, then one wait.
  std::vector<std::optional<proto::FsReply>> replies(mappings.size());
  size_t answered = 0;
  for (size_t i = 0; i < mappings.size(); ++i) {
    proto::FsGetattrRequest r;
    r.path = mappings[i].remote;
    link_->SendFs(proto::MakeFsRequest(0, r), [&, i](proto::FsReply reply) {
      replies[i] = std::move(reply);
      if (++answered == mappings.size()) uv_stop(loop_);
    });
  }
  if (answered < mappings.size()) uv_run(loop_, UV_RUN_DEFAULT);
  for (size_t i = 0; i < mappings.size(); ++i) {
    const auto& m = mappings[i];
    *failed = i;
    if (!replies[i]) return Error("workspace " + m.remote + ": the agent did not answer");
    auto attr = proto::ParseFsReplyFor<proto::FsGetattrRequest>(*replies[i]);
    if (!attr) {
      int err = attr.error().sys_errno();
      if (err == ENOENT) {
        return Error("workspace: " + host_label_ + " has no directory " + m.remote, err);
      }
      return Error("workspace: " + m.remote + " on " + host_label_ + ": " + strerror(err), err);
    }
    if (!S_ISDIR(attr->attr.mode)) {
      return Error("workspace: " + m.remote + " on " + host_label_ + " is not a directory",
                   ENOTDIR);
    }
  }

  for (size_t i = 0; i < mappings.size(); ++i) {
    const auto& m = mappings[i];
    *failed = i;
    std::string mnt = runtime_dir_ + "/ws" + std::to_string(mountpoints_.size());
    if (mkdir(mnt.c_str(), 0700) != 0 && errno != EEXIST) {
      return Error::FromErrno("workspace: mkdir " + mnt, errno);
    }
    mountpoints_.push_back(mnt);
    fuse::WorkspaceOptions o;
    o.mountpoint = mnt;
    o.remote_root = m.remote;
    o.backend = client_.get();
    o.owners = who.owner_local && who.remote_ids_known ? fuse::OwnerMapping::kLocal
                                                       : fuse::OwnerMapping::kRemote;
    o.xattrs = who.xattrs_all ? fuse::XattrNamespaces::kAll : fuse::XattrNamespaces::kUser;
    o.remote_uid = who.remote_uid;
    o.remote_gid = who.remote_gid;
    o.local_uid = geteuid();
    o.local_gid = getegid();
    o.logger = Log("fuse");
    // Its callbacks never block, and this thread never touches the mount
    // (files of the workspace that a command is handed are pumped on other
    // threads): the loop can serve it.
    o.threads = 0;
    auto w = fuse::Workspace::Mount(std::move(o));
    if (!w) return w.error();
    auto* poll = new uv_poll_t;
    if (int rc = uv_poll_init(loop_, poll, (*w)->fuse_fd()); rc < 0) {
      delete poll;
      return Error(std::string("workspace: watching /dev/fuse: ") + uv_strerror(rc));
    }
    poll->data = w->get();
    uv_poll_start(poll, UV_READABLE, &Workspaces::OnFuseReadable);
    fuse_polls_.push_back(poll);
    Log("session")->debug("workspace: {} on {} at {} (shown at {})", m.remote, host_label_, mnt,
                          m.local);
    mounts_.push_back(std::move(*w));
    locals_.push_back(m.local);
  }
  return Ok();
}

std::vector<ns::BindMount> Workspaces::binds() const {
  std::vector<ns::BindMount> out;
  for (size_t i = 0; i < mounts_.size(); ++i) out.push_back({mounts_[i]->mountpoint(), locals_[i]});
  return out;
}

void Workspaces::Revalidate(std::function<void()> done) {
  if (mounts_.empty()) return done();
  auto w = std::make_shared<Waiting>();
  w->done = std::move(done);
  w->remaining = mounts_.size();
  std::thread::id loop_thread = std::this_thread::get_id();
  for (auto& m : mounts_) {
    m->Revalidate([this, w, loop_thread] {
      if (std::this_thread::get_id() != loop_thread) w->async = true;
      if (--w->remaining > 0 || !w->async) return;  // not last, or all here: finished below
      std::lock_guard lock(mu_);
      finished_.push_back(w);
      uv_async_send(async_);
    });
  }
  if (w->remaining == 0 && !w->async) {
    w->finished = true;
    return w->done();
  }
  w->timer = new uv_timer_t;
  uv_timer_init(loop_, w->timer);
  w->timer->data = new std::shared_ptr<Waiting>(w);
  uv_timer_start(
      w->timer,
      [](uv_timer_t* t) noexcept {
        auto* holder = static_cast<std::shared_ptr<Waiting>*>(t->data);
        std::shared_ptr<Waiting> waiting = *holder;
        Log("fuse")->warn("workspace: cache revalidation is taking long; letting the command finish");
        if (waiting->finished) return;
        waiting->finished = true;
        waiting->done();
      },
      kRevalidateTimeoutMs, 0);
}

void Workspaces::OnAsync(uv_async_t* h) noexcept {
  auto* self = static_cast<Workspaces*>(h->data);
  if (self != nullptr) self->RunFinished();
}

void Workspaces::RunFinished() {
  std::vector<std::shared_ptr<Waiting>> finished;
  {
    std::lock_guard lock(mu_);
    finished.swap(finished_);
  }
  for (auto& w : finished) {
    if (w->timer != nullptr) {
      uv_timer_stop(w->timer);
      uv_close(reinterpret_cast<uv_handle_t*>(w->timer), [](uv_handle_t* h) noexcept {
        delete static_cast<std::shared_ptr<Waiting>*>(h->data);
        delete reinterpret_cast<uv_timer_t*>(h);
      });
      w->timer = nullptr;
    }
    if (w->finished) continue;
    w->finished = true;
    w->done();
  }
}

void Workspaces::SetLink(AgentLink* link) {
  link_ = link;
  client_->SetLink(link);
}

void Workspaces::OnFuseReadable(uv_poll_t* h, int status, int /*events*/) noexcept {
  auto* w = static_cast<fuse::Workspace*>(h->data);
  // A bounded batch, so commands' streams keep moving under a flood of file
  // operations; the poll is level-triggered and comes back for the rest.
  if (w == nullptr || status < 0 || !w->ServeReady(64)) uv_poll_stop(h);
}

void Workspaces::Close() {
  if (async_ == nullptr) return;
  for (uv_poll_t* poll : fuse_polls_) {
    poll->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll),
             [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_poll_t*>(h); });
  }
  fuse_polls_.clear();
  client_->Close();
  // Unmounting runs the markers of revalidations still queued.
  mounts_.clear();
  RunFinished();
  for (const auto& mnt : mountpoints_) rmdir(mnt.c_str());
  mountpoints_.clear();
  async_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(async_),
           [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_async_t*>(h); });
  async_ = nullptr;
}

}  // namespace mproxy::broker
