// Workspace: a remote directory mounted as a local FUSE filesystem, every
// operation sent to the agent as an FsRequest (proto/fs.h) through an
// FsBackend, with the kernel's attribute, entry and page caches in use.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "proto/fs.h"

namespace spdlog {
class logger;
}

namespace mproxy::fuse {

class FuseSession;
class WorkspaceFs;

// Where the file operations go. Implemented by the broker over the agent
// link (and by tests over a local FsOps). Thread-safe.
class FsBackend {
 public:
  using Done = std::function<void(proto::FsReply)>;
  virtual ~FsBackend() = default;
  // Sends `request`; `done` runs exactly once with the reply, on any thread,
  // possibly before Submit returns (a backend that is down answers EIO at
  // once). A backend being destroyed may drop callbacks instead: the
  // Workspace using it is stopped first.
  virtual void Submit(proto::FsOpRequest request, Done done) = 0;
  // Submit for a request nobody waits on (a RELEASE, a write-behind): it may
  // wait a moment (about a millisecond) to travel with the next request,
  // which saves the remote side a wake-up of its own.
  virtual void SubmitLater(proto::FsOpRequest request, Done done) {
    Submit(std::move(request), std::move(done));
  }
  // Somebody waits on what SubmitLater queued after all (a close waiting for
  // its writes): send it now.
  virtual void SendNow() {}
};

// How file owners are shown.
enum class OwnerMapping {
  kLocal,   // the remote user's files show as the local user's (default)
  kRemote,  // the remote numbers as they are
};

// Which extended attributes the mount passes to the remote host.
enum class XattrNamespaces {
  // user.* only (NFS 4.2 does the same); other names are EOPNOTSUPP. The
  // remote host's security labels and ACLs name its own policy, users and
  // groups. It also means `ls -l`, which asks for an SELinux label and an ACL
  // of every file, stops asking after the first EOPNOTSUPP on the mount.
  kUser,
  kAll,  // every namespace, as the agent's user may use them there
};

// The user.* names of a listxattr(2) list (names each ending in NUL).
std::string UserXattrNames(std::string_view names);

struct WorkspaceOptions {
  // An existing local directory to mount on (the session binds it into the
  // namespace at the local side of the mapping).
  std::string mountpoint;
  // The remote directory shown, absolute; it must exist (Mount() checks).
  std::string remote_root;
  FsBackend* backend = nullptr;  // outlives the Workspace
  OwnerMapping owners = OwnerMapping::kLocal;
  XattrNamespaces xattrs = XattrNamespaces::kUser;
  // The agent's user and group on the remote host, and who they show as.
  uint32_t remote_uid = 0;
  uint32_t remote_gid = 0;
  uid_t local_uid = 0;
  gid_t local_gid = 0;
  // How long the kernel may trust an entry, a missing name, and attributes
  // without asking. Revalidate() cuts them short after a remote command.
  std::chrono::milliseconds entry_timeout{5000};
  std::chrono::milliseconds negative_timeout{5000};
  std::chrono::milliseconds attr_timeout{5000};
  // FUSE workers: they only queue requests, never wait. 0: none, the
  // owner's event loop serves the mount (Workspace::ServeReady).
  unsigned threads = 2;
  std::shared_ptr<spdlog::logger> logger;
};

// A mounted workspace. Mount() and the destructor run on the owner's thread
// and block (mount, unmount, join); Revalidate() from any thread. The backend
// must not call back into a destroyed Workspace: stop its callbacks first
// (the broker closes its FsClient), then destroy this.
class Workspace {
 public:
  // Checks that remote_root is a directory (a clear error when it is
  // missing), then mounts and starts serving.
  static Result<std::unique_ptr<Workspace>> Mount(WorkspaceOptions options);

  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  ~Workspace();

  // Remote files may have changed (a remote command exited): makes the
  // kernel forget every attribute and entry it may still trust, then runs
  // `done` on some thread. Runs `done` at once when nothing is cached.
  void Revalidate(std::function<void()> done);

  const std::string& mountpoint() const;
  const std::string& remote_root() const;

  // With WorkspaceOptions::threads = 0: see FuseSession::fd and ServeReady.
  int fuse_fd() const;
  bool ServeReady(unsigned max_requests);

 private:
  Workspace() = default;

  std::unique_ptr<WorkspaceFs> fs_;
  std::unique_ptr<FuseSession> session_;
};

}  // namespace mproxy::fuse
