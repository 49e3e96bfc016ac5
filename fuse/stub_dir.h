// StubDir: the read-only path-stub directory. One executable entry per
// remote command; every entry is the shim, so the kernel runs the shim with
// the caller's argv whenever a PATH lookup lands here.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace spdlog {
class logger;
}

namespace mproxy::fuse {

class FuseSession;
class StubFs;

struct StubDirOptions {
  // An existing directory to mount on. A stale mount left there by a killed
  // process is detached first.
  std::string mountpoint;
  // The executable every entry shows: read once into memory at Mount().
  std::string shim_path;
  // The initial command names (see SetNames for what is accepted).
  std::vector<std::string> names;
  // Called on a lookup miss, at most once per refresh_interval, on a FUSE
  // thread, with the missing lookup waiting: returns the complete new set of
  // names (or an error: the old set stays and the error is logged). It may
  // block (e.g. ask the agent to enumerate PATH), but must not wait on the
  // thread that destroys the StubDir. Empty: misses are plain ENOENT.
  std::function<Result<std::vector<std::string>>()> refresh;
  std::chrono::milliseconds refresh_interval{1000};
  // How long the kernel may trust a positive lookup and the attributes.
  // Removals are pushed to the kernel at once, so this only bounds staleness
  // if that fails. Negative lookups are never cached (a new command must
  // show up on the next miss).
  std::chrono::milliseconds entry_timeout{10000};
  // Let other users (e.g. root, or a different uid in a namespace) use the
  // mount; needs user_allow_other in /etc/fuse.conf when unprivileged.
  bool allow_other = false;
  // Where warnings go; null means spdlog's default logger.
  std::shared_ptr<spdlog::logger> logger;
};

// A mounted stub directory. Owned by the broker's session; Mount() and the
// destructor run on the owner's thread (they block: mount, unmount, join, so
// not on a libuv loop thread). SetNames() and names() may be called from any
// thread. All FUSE work happens on threads of its own.
//
// Every entry is one shared inode (ino 2): a regular file, mode 0555, owned by
// the mounting user, whose bytes are the shim's, so the page cache holds the
// shim once no matter how many names or execs. Consequences:
//  * lookup/forget: the kernel's lookup count for ino 2 is the sum over all
//    names; the inode lives as long as the mount, so forget frees nothing.
//  * nlink is the number of names (they are hard links of one file), at
//    least 1; tools that detect hard links (du, tar) see them as such.
//  * open sets keep_cache, otherwise every exec would flush the shared pages.
// The mount is "ro,default_permissions,nosuid,nodev": writes, creates,
// mkdir, unlink, chmod all fail with EROFS from the kernel; anything not
// listed is ENOENT.
class StubDir {
 public:
  // Reads the shim, mounts, starts serving. Errors say what failed: shim
  // unreadable, FUSE unusable (see CheckFuseUsable), stale mount, mount.
  static Result<std::unique_ptr<StubDir>> Mount(StubDirOptions options);

  StubDir(const StubDir&) = delete;
  StubDir& operator=(const StubDir&) = delete;
  // Unmounts (lazily if busy: later users of the mount get ENOTCONN) and
  // joins the FUSE threads.
  ~StubDir();

  // Replaces the set of names. Empty names, ".", "..", and names with '/'
  // or NUL are dropped with a warning; duplicates collapse. Removed names
  // disappear from the kernel's cache right away (asynchronously), added
  // ones are visible on the next lookup.
  void SetNames(std::vector<std::string> names);
  // The current names, sorted.
  std::vector<std::string> names() const;

  const std::string& mountpoint() const;
  // "<mountpoint>/<name>": what AT_EXECFN holds when the shim runs via PATH.
  std::string PathOf(const std::string& name) const;

 private:
  StubDir() = default;

  std::unique_ptr<StubFs> fs_;
  std::unique_ptr<FuseSession> session_;
};

}  // namespace mproxy::fuse
