// GroupKiller: remembers the process groups the agent started and ends them
// on request: SIGHUP (and SIGCONT, so stopped groups see it) at once, then
// SIGKILL after a grace period, until each group has no member left. At the
// end of a session it also ends the agent's remaining children: processes
// that left their group (setsid) and were reparented to the subreaper agent.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <chrono>
#include <functional>
#include <map>
#include <set>

namespace mproxy::agent {

// Owned by the session; must outlive the loop run (its uv_timer_t is a
// member). Loop thread only.
class GroupKiller {
 public:
  GroupKiller(uv_loop_t* loop, std::chrono::milliseconds grace);
  GroupKiller(const GroupKiller&) = delete;
  GroupKiller& operator=(const GroupKiller&) = delete;

  // A group the agent started (its leader's pid).
  void Track(pid_t pgid);
  // Starts ending one group. Untracked groups are ignored.
  void Kill(pid_t pgid);
  // Starts ending every tracked group that still has members, and from now
  // on every child of the agent too.
  void KillAll();
  // Forgets groups that have no members left. Called after reaping, so a
  // group number the kernel may reuse is not kept around.
  void Prune();
  // True once no tracked group has a member (and, after KillAll, the agent
  // has no child left).
  bool AllGone();
  // Runs once when the last group being killed is gone (or right away if
  // none is). Used for the end of the session.
  void WhenAllGone(std::function<void()> done);
  void Close();

 private:
  static void TimerCallback(uv_timer_t* handle) noexcept;
  void Check();
  static bool GroupExists(pid_t pgid);
  // HUP, then KILL after the grace period, for each child of the agent.
  // Returns whether any child is left.
  bool EndChildren();

  uv_timer_t timer_{};
  std::chrono::milliseconds grace_;
  std::set<pid_t> tracked_;
  // Groups being ended, with the time SIGKILL is due (steady clock).
  std::map<pid_t, std::chrono::steady_clock::time_point> dying_;
  std::set<pid_t> sent_kill_;
  bool killing_all_ = false;
  // Children being ended after KillAll, with the time SIGKILL is due.
  std::map<pid_t, std::chrono::steady_clock::time_point> dying_children_;
  std::function<void()> all_gone_;
  bool timer_running_ = false;
};

}  // namespace mproxy::agent
