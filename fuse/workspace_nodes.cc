// NodeTable: path-based node ids. See workspace_nodes.h.
#include "fuse/workspace_nodes.h"

#include <algorithm>

namespace mproxy::fuse {

std::string JoinPath(std::string_view dir, std::string_view name) {
  std::string path(dir);
  if (path.empty() || path.back() != '/') path += '/';
  path += name;
  return path;
}

NodeTable::NodeTable(std::string root) : root_(std::move(root)) {
  Node r;
  r.nlookup = 1;  // the root is never forgotten
  nodes_.emplace(FUSE_ROOT_ID, std::move(r));
}

std::optional<std::string> NodeTable::PathOfLocked(fuse_ino_t ino) const {
  std::vector<const std::string*> names;
  while (ino != FUSE_ROOT_ID) {
    auto it = nodes_.find(ino);
    if (it == nodes_.end() || it->second.detached) return std::nullopt;
    names.push_back(&it->second.name);
    ino = it->second.parent;
  }
  std::string path = root_;
  for (auto it = names.rbegin(); it != names.rend(); ++it) path = JoinPath(path, **it);
  return path;
}

std::optional<std::string> NodeTable::PathOf(fuse_ino_t ino) const {
  std::lock_guard lock(mu_);
  return PathOfLocked(ino);
}

std::optional<std::pair<std::string, std::string>> NodeTable::Where(fuse_ino_t ino) const {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end() || it->second.detached || ino == FUSE_ROOT_ID) return std::nullopt;
  auto dir = PathOfLocked(it->second.parent);
  if (!dir) return std::nullopt;
  return std::pair{std::move(*dir), it->second.name};
}

std::optional<std::string> NodeTable::ChildPath(fuse_ino_t parent, std::string_view name) const {
  std::lock_guard lock(mu_);
  auto path = PathOfLocked(parent);
  if (!path) return std::nullopt;
  return JoinPath(*path, name);
}

void NodeTable::MarkFreshLocked(fuse_ino_t ino, Node& node, Clock::time_point until) {
  if (until <= node.fresh_until) return;
  node.fresh_until = until;
  fresh_[ino] = until;
}

namespace {

// The number a node is indexed under in by_remote_ino_ (0: not indexed).
// Directories have no hard links.
uint64_t IndexKey(bool dir, const std::optional<ContentStamp>& stamp) {
  return dir || !stamp ? 0 : stamp->remote_ino;
}

}  // namespace

void NodeTable::UnindexLocked(fuse_ino_t ino, const Node& node) {
  uint64_t key = IndexKey(node.dir, node.stamp);
  if (key == 0) return;
  auto [it, end] = by_remote_ino_.equal_range(key);
  for (; it != end; ++it) {
    if (it->second == ino) {
      by_remote_ino_.erase(it);
      return;
    }
  }
}

void NodeTable::SetStampLocked(fuse_ino_t ino, Node& node, bool dir, const ContentStamp& stamp) {
  uint64_t before = IndexKey(node.dir, node.stamp);
  uint64_t after = IndexKey(dir, stamp);
  if (before != after) {
    UnindexLocked(ino, node);
    if (after != 0) by_remote_ino_.emplace(after, ino);
  }
  node.dir = dir;
  node.stamp = stamp;
}

fuse_ino_t NodeTable::Link(fuse_ino_t parent, std::string_view name, bool dir,
                           const ContentStamp& stamp, Clock::time_point fresh_until) {
  std::lock_guard lock(mu_);
  auto p = nodes_.find(parent);
  if (p == nodes_.end() || p->second.detached) return 0;
  Key key{parent, std::string(name)};
  negative_.erase(key);
  fuse_ino_t ino = 0;
  if (auto it = children_.find(key); it != children_.end()) {
    ino = it->second;
  } else {
    ino = next_ino_++;
    Node n;
    n.parent = parent;
    n.name = key.second;
    nodes_.emplace(ino, std::move(n));
    children_.emplace(std::move(key), ino);
  }
  Node& node = nodes_.at(ino);
  ++node.nlookup;
  SetStampLocked(ino, node, dir, stamp);
  MarkFreshLocked(ino, node, fresh_until);
  return ino;
}

void NodeTable::Forget(fuse_ino_t ino, uint64_t n) {
  std::lock_guard lock(mu_);
  if (ino == FUSE_ROOT_ID) return;
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return;
  Node& node = it->second;
  node.nlookup -= std::min(n, node.nlookup);
  if (node.nlookup > 0) return;
  if (!node.detached) {
    auto c = children_.find(Key{node.parent, node.name});
    if (c != children_.end() && c->second == ino) children_.erase(c);
  }
  fresh_.erase(ino);
  UnindexLocked(ino, node);
  nodes_.erase(it);
}

void NodeTable::DetachLocked(fuse_ino_t ino) {
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return;
  it->second.detached = true;
  it->second.parent = 0;
}

fuse_ino_t NodeTable::Unlinked(fuse_ino_t parent, std::string_view name) {
  std::lock_guard lock(mu_);
  auto c = children_.find(Key{parent, std::string(name)});
  if (c == children_.end()) return 0;
  fuse_ino_t ino = c->second;
  DetachLocked(ino);
  children_.erase(c);
  return ino;
}

fuse_ino_t NodeTable::Renamed(fuse_ino_t parent, std::string_view name, fuse_ino_t new_parent,
                              std::string_view new_name, bool exchange) {
  std::lock_guard lock(mu_);
  Key from{parent, std::string(name)};
  Key to{new_parent, std::string(new_name)};
  if (from == to) return 0;
  negative_.erase(from);
  negative_.erase(to);
  std::optional<fuse_ino_t> src, dst;
  if (auto it = children_.find(from); it != children_.end()) {
    src = it->second;
    children_.erase(it);
  }
  if (auto it = children_.find(to); it != children_.end()) {
    dst = it->second;
    children_.erase(it);
  }
  auto place = [&](fuse_ino_t ino, const Key& key) {
    Node& n = nodes_.at(ino);
    n.parent = key.first;
    n.name = key.second;
    children_[key] = ino;
  };
  if (src) place(*src, to);
  if (!dst) return 0;
  if (exchange) {
    place(*dst, from);
    return 0;
  }
  DetachLocked(*dst);
  return *dst;
}

bool NodeTable::IsDir(fuse_ino_t ino) const {
  if (ino == FUSE_ROOT_ID) return true;
  std::lock_guard lock(mu_);
  auto it = nodes_.find(ino);
  return it != nodes_.end() && it->second.dir;
}

uint64_t NodeTable::ContentSize(fuse_ino_t ino) const {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(ino);
  return it != nodes_.end() && it->second.stamp ? it->second.stamp->size : 0;
}

uint64_t NodeTable::RemoteIno(fuse_ino_t ino) const {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(ino);
  return it != nodes_.end() && it->second.stamp ? it->second.stamp->remote_ino : 0;
}

std::vector<fuse_ino_t> NodeTable::OtherLinks(fuse_ino_t ino) const {
  std::lock_guard lock(mu_);
  std::vector<fuse_ino_t> out;
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return out;
  uint64_t key = IndexKey(it->second.dir, it->second.stamp);
  if (key == 0) return out;
  auto [same, end] = by_remote_ino_.equal_range(key);
  for (; same != end; ++same) {
    if (same->second != ino) out.push_back(same->second);
  }
  return out;
}

void NodeTable::MarkChangedElsewhere(fuse_ino_t ino) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(ino);
  if (it != nodes_.end()) it->second.changed_elsewhere = true;
}

bool NodeTable::TakeChangedElsewhere(fuse_ino_t ino) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return false;
  return std::exchange(it->second.changed_elsewhere, false);
}

void NodeTable::AddHandle(fuse_ino_t ino, uint64_t fh) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(ino);
  if (it != nodes_.end()) it->second.handles.push_back(fh);
}

void NodeTable::RemoveHandle(fuse_ino_t ino, uint64_t fh) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return;
  auto& h = it->second.handles;
  if (auto f = std::find(h.begin(), h.end(), fh); f != h.end()) h.erase(f);
}

std::optional<uint64_t> NodeTable::AnyHandle(fuse_ino_t ino) const {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end() || it->second.handles.empty()) return std::nullopt;
  return it->second.handles.back();
}

void NodeTable::SetNoXattrs(fuse_ino_t ino, bool none) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(ino);
  if (it != nodes_.end()) it->second.no_xattrs = none;
}

bool NodeTable::NoXattrs(fuse_ino_t ino) const {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(ino);
  return it != nodes_.end() && it->second.no_xattrs;
}

void NodeTable::NoteNegative(fuse_ino_t parent, std::string_view name, Clock::time_point until) {
  std::lock_guard lock(mu_);
  negative_[Key{parent, std::string(name)}] = until;
}

bool NodeTable::KernelMayKnow(fuse_ino_t parent, std::string_view name,
                              Clock::time_point now) const {
  Key key{parent, std::string(name)};
  std::lock_guard lock(mu_);
  if (children_.count(key) != 0) return true;
  auto it = negative_.find(key);
  return it != negative_.end() && it->second > now;
}

void NodeTable::NoteFresh(fuse_ino_t ino, Clock::time_point until) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(ino);
  if (it != nodes_.end()) MarkFreshLocked(ino, it->second, until);
}

bool NodeTable::UpdateStamp(fuse_ino_t ino, const ContentStamp& stamp) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return false;
  bool same = it->second.stamp && *it->second.stamp == stamp;
  SetStampLocked(ino, it->second, it->second.dir, stamp);
  return same;
}

NodeTable::Fresh NodeTable::TakeFresh(Clock::time_point now) {
  std::lock_guard lock(mu_);
  Fresh out;
  for (const auto& [ino, until] : fresh_) {
    auto it = nodes_.find(ino);
    if (it == nodes_.end()) continue;
    it->second.fresh_until = {};
    if (until <= now) continue;
    out.inodes.push_back(ino);
    if (!it->second.detached && ino != FUSE_ROOT_ID) {
      out.entries.push_back({it->second.parent, it->second.name, it->second.dir});
    }
  }
  fresh_.clear();
  for (const auto& [key, until] : negative_) {
    if (until > now) out.entries.push_back({key.first, key.second, false});
  }
  negative_.clear();
  return out;
}

size_t NodeTable::size() const {
  std::lock_guard lock(mu_);
  return nodes_.size();
}

}  // namespace mproxy::fuse
