// FsHandles: a mutex-guarded map of shared handles.
#include "agent/fs_handles.h"

#include <utility>

namespace mproxy::agent {

FsHandle::~FsHandle() {
  if (dir_ != nullptr) closedir(dir_);  // closes the fd as well
}

uint64_t FsHandles::Add(std::shared_ptr<FsHandle> h) {
  std::lock_guard<std::mutex> lock(mu_);
  if (handles_.size() >= max_open_) return 0;
  uint64_t id = next_id_++;
  handles_.emplace(id, std::move(h));
  return id;
}

std::shared_ptr<FsHandle> FsHandles::Get(uint64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = handles_.find(id);
  return it == handles_.end() ? nullptr : it->second;
}

std::shared_ptr<FsHandle> FsHandles::Take(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = handles_.find(id);
  if (it == handles_.end()) return nullptr;
  std::shared_ptr<FsHandle> h = std::move(it->second);
  handles_.erase(it);
  return h;
}

void FsHandles::Clear() {
  std::unordered_map<uint64_t, std::shared_ptr<FsHandle>> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    old.swap(handles_);
  }
  // `old` goes out of scope here, outside the lock: closing may take a while.
}

size_t FsHandles::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return handles_.size();
}

}  // namespace mproxy::agent
