// HUP-then-KILL for process groups, checked on a short timer while any group
// is dying (a group can empty without the agent being told: its last member
// may be reaped by a grandchild, not by us).
#include "agent/group_killer.h"

#include <dirent.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "agent/log.h"

namespace mproxy::agent {
namespace {

constexpr uint64_t kCheckIntervalMs = 20;

// Processes whose parent is `parent`, from /proc (empty without /proc).
std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (struct dirent* e = readdir(d)) {
    char* end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE* f = fopen(path, "re");
    if (f == nullptr) continue;
    char buf[512];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const char* close = strrchr(buf, ')');
    char state;
    long ppid;
    if (close != nullptr && sscanf(close + 1, " %c %ld", &state, &ppid) == 2 && ppid == parent) {
      out.push_back(static_cast<pid_t>(pid));
    }
  }
  closedir(d);
  return out;
}

}  // namespace

GroupKiller::GroupKiller(uv_loop_t* loop, std::chrono::milliseconds grace) : grace_(grace) {
  uv_timer_init(loop, &timer_);
  timer_.data = this;
}

bool GroupKiller::GroupExists(pid_t pgid) {
  // Zombies still count as members until reaped, so "gone" means reaped.
  return kill(-pgid, 0) == 0 || errno == EPERM;
}

void GroupKiller::Track(pid_t pgid) {
  if (pgid > 1) tracked_.insert(pgid);
}

void GroupKiller::Kill(pid_t pgid) {
  if (tracked_.count(pgid) == 0 || dying_.count(pgid) != 0) return;
  Logf(LogLevel::kDebug, "process group %d: SIGHUP", static_cast<int>(pgid));
  kill(-pgid, SIGHUP);
  kill(-pgid, SIGCONT);
  dying_[pgid] = std::chrono::steady_clock::now() + grace_;
  if (!timer_running_) {
    timer_running_ = true;
    uv_timer_start(&timer_, TimerCallback, kCheckIntervalMs, kCheckIntervalMs);
  }
}

void GroupKiller::KillAll() {
  killing_all_ = true;
  if (!timer_running_) {
    timer_running_ = true;
    uv_timer_start(&timer_, TimerCallback, kCheckIntervalMs, kCheckIntervalMs);
  }
  Prune();
  std::set<pid_t> groups = tracked_;
  for (pid_t g : groups) Kill(g);
  Check();
}

void GroupKiller::Prune() {
  for (auto it = tracked_.begin(); it != tracked_.end();) {
    if (GroupExists(*it)) {
      ++it;
      continue;
    }
    dying_.erase(*it);
    sent_kill_.erase(*it);
    it = tracked_.erase(it);
  }
}

bool GroupKiller::AllGone() {
  Prune();
  return tracked_.empty() && (!killing_all_ || ChildrenOf(getpid()).empty());
}

bool GroupKiller::EndChildren() {
  auto now = std::chrono::steady_clock::now();
  std::vector<pid_t> children = ChildrenOf(getpid());
  std::map<pid_t, std::chrono::steady_clock::time_point> still;
  for (pid_t pid : children) {
    auto it = dying_children_.find(pid);
    if (it == dying_children_.end()) {
      Logf(LogLevel::kDebug, "child %d: SIGHUP", static_cast<int>(pid));
      kill(pid, SIGHUP);
      kill(pid, SIGCONT);
      still[pid] = now + grace_;
    } else {
      if (now >= it->second) kill(pid, SIGKILL);  // repeated each tick: cheap
      still[pid] = it->second;
    }
  }
  dying_children_ = std::move(still);
  return !children.empty();
}

void GroupKiller::WhenAllGone(std::function<void()> done) {
  all_gone_ = std::move(done);
  Check();
}

void GroupKiller::TimerCallback(uv_timer_t* handle) noexcept {
  static_cast<GroupKiller*>(handle->data)->Check();
}

void GroupKiller::Check() {
  Prune();
  auto now = std::chrono::steady_clock::now();
  for (const auto& [pgid, deadline] : dying_) {
    if (now >= deadline && sent_kill_.insert(pgid).second) {
      Logf(LogLevel::kDebug, "process group %d: SIGKILL after grace", static_cast<int>(pgid));
      kill(-pgid, SIGKILL);
    }
  }
  bool children_left = killing_all_ && EndChildren();
  if (dying_.empty() && !children_left && timer_running_) {
    timer_running_ = false;
    uv_timer_stop(&timer_);
  }
  if (all_gone_ && dying_.empty() && tracked_.empty() && !children_left) {
    auto done = std::move(all_gone_);
    all_gone_ = nullptr;
    done();
  }
}

void GroupKiller::Close() {
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&timer_))) return;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

}  // namespace mproxy::agent
