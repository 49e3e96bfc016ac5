// The session's private runtime directory: where the shim socket and the
// path-stub mount point live. 0700 and owned by this user, so no other user
// can reach the socket; removed when the session ends.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"

namespace mproxy::broker {

// Owned by the session; any thread. The destructor removes the directory
// and what the session left in it (it must be unmounted first).
class RuntimeDir {
 public:
  // $XDG_RUNTIME_DIR/mproxy/XXXXXX when that is set and ours, else
  // /tmp/mproxy-<uid>/XXXXXX. A shared parent owned by someone else or open
  // to others is refused rather than used.
  static Result<std::unique_ptr<RuntimeDir>> Create();
  // The same under an explicit parent (for tests).
  static Result<std::unique_ptr<RuntimeDir>> CreateUnder(const std::string& parent);

  ~RuntimeDir();
  RuntimeDir(const RuntimeDir&) = delete;
  RuntimeDir& operator=(const RuntimeDir&) = delete;

  const std::string& path() const { return path_; }
  std::string socket_path() const { return path_ + "/sock"; }
  std::string stub_dir() const { return path_ + "/bin"; }
  // The last path component: a short id for MPROXY_SESSION and logs.
  std::string id() const;

 private:
  explicit RuntimeDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace mproxy::broker
