// FsHandles: the files and directories a session's file operations keep
// open, by the 64-bit ids the peer names them with.
#pragma once

#include <dirent.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "common/unique_fd.h"

namespace mproxy::agent {

// One open file or directory. Shared (std::shared_ptr) by the table and by
// every operation using it, so RELEASE while a READ is in flight only drops
// the table's reference: the fd closes when the last user is done.
class FsHandle {
 public:
  enum class Kind { kFile, kDir };

  explicit FsHandle(UniqueFd fd) : kind_(Kind::kFile), fd_(std::move(fd)) {}
  // Takes ownership of `dir` (from fdopendir).
  explicit FsHandle(DIR* dir) : kind_(Kind::kDir), dir_(dir) {}
  ~FsHandle();
  FsHandle(const FsHandle&) = delete;
  FsHandle& operator=(const FsHandle&) = delete;

  Kind kind() const { return kind_; }
  int fd() const { return kind_ == Kind::kDir ? dirfd(dir_) : fd_.get(); }

  // Directory reading keeps a position in the DIR, so one READDIR at a time:
  // hold dir_mutex() while using dir() and dir_pos().
  std::mutex& dir_mutex() { return dir_mu_; }
  DIR* dir() { return dir_; }
  uint64_t& dir_pos() { return dir_pos_; }  // the cookie dir() is at

 private:
  Kind kind_;
  UniqueFd fd_;
  DIR* dir_ = nullptr;
  std::mutex dir_mu_;
  uint64_t dir_pos_ = 0;
};

// The table of one session. Thread-safe: the loop thread and thread-pool
// workers call it concurrently. Ids start at 1 and are never reused within
// a session.
class FsHandles {
 public:
  explicit FsHandles(size_t max_open) : max_open_(max_open) {}
  FsHandles(const FsHandles&) = delete;
  FsHandles& operator=(const FsHandles&) = delete;

  // The new handle's id, or 0 when `max_open` handles are open already.
  uint64_t Add(std::shared_ptr<FsHandle> h);
  // nullptr for an id that is not open.
  std::shared_ptr<FsHandle> Get(uint64_t id) const;
  // Removes the handle and returns it (nullptr if not open).
  std::shared_ptr<FsHandle> Take(uint64_t id);
  // Forgets every handle; each closes when its last in-flight user is done.
  void Clear();
  size_t size() const;
  // Whether Add would fail now (a hint: other threads may change it).
  bool Full() const { return size() >= max_open_; }

 private:
  const size_t max_open_;
  // Guards handles_ and next_id_. Held only for the map operation, never
  // across a syscall or while closing a handle.
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, std::shared_ptr<FsHandle>> handles_;
  uint64_t next_id_ = 1;
};

}  // namespace mproxy::agent
