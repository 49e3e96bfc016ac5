// ListingCache. See workspace_listings.h.
#include "fuse/workspace_listings.h"

#include <sys/stat.h>

#include <cerrno>

#include "fuse/workspace_nodes.h"

namespace mproxy::fuse {
namespace {

// Read ahead: at most this many fetches at once, this many subdirectories
// of one listing, and this many entries held in all.
constexpr size_t kAheadParallel = 16;
constexpr size_t kAheadPerListing = 256;
constexpr size_t kMaxCachedEntries = 200000;

}  // namespace

ListingCache::ListingCache(FsBackend* backend, std::chrono::milliseconds ttl, bool xattrs)
    : backend_(backend), ttl_(ttl), xattrs_(xattrs) {}

void ListingCache::Get(const std::string& path, Done done) {
  std::shared_ptr<const Entries> hit;
  std::vector<std::string> start;
  {
    std::lock_guard lock(mu_);
    auto it = listings_.find(path);
    if (it != listings_.end() && FreshLocked(it->second, Clock::now())) {
      hit = it->second.entries;
      QueueChildrenLocked(path, *hit);
      start = TakeStartableLocked();
    } else {
      auto [f, created] = fetching_.try_emplace(path);
      f->second.waiters.push_back(std::move(done));
      if (f->second.ahead) {  // read ahead, now wanted: no longer counts as ahead
        f->second.ahead = false;
        if (ahead_running_ > 0) --ahead_running_;
        start = TakeStartableLocked();
      }
      if (created) start.push_back(path);
    }
  }
  if (hit) done(0, hit);
  for (const auto& p : start) Start(p);
}

void ListingCache::Start(const std::string& path) {
  uint64_t generation;
  {
    std::lock_guard lock(mu_);
    generation = generation_;
  }
  proto::FsListdirRequest r{path, proto::kFsMaxReaddirBytes, xattrs_};
  backend_->Submit(std::move(r), [this, path, generation](proto::FsReply reply) {
    Finished(path, generation, std::move(reply));
  });
}

void ListingCache::Finished(const std::string& path, uint64_t generation, proto::FsReply reply) {
  auto parsed = proto::ParseFsReplyFor<proto::FsListdirRequest>(reply);
  int err = 0;
  std::shared_ptr<Entries> entries;
  if (!parsed) {
    err = proto::FsErrno(parsed.error());
  } else if (parsed->eof) {
    entries = std::make_shared<Entries>(std::move(parsed->entries));
  }
  std::vector<Done> waiters;
  std::vector<std::string> start;
  {
    std::lock_guard lock(mu_);
    bool ahead = false;
    if (auto f = fetching_.find(path); f != fetching_.end()) {
      waiters = std::move(f->second.waiters);
      ahead = f->second.ahead;
      fetching_.erase(f);
    }
    if (ahead && ahead_running_ > 0) --ahead_running_;
    if (cached_entries_ >= kMaxCachedEntries / 2) SweepLocked();
    if (entries && generation == generation_ && cached_entries_ < kMaxCachedEntries) {
      StoreLocked(path, entries);
    }
    // Someone listed this directory: its subdirectories are likely next.
    if (entries && !waiters.empty()) QueueChildrenLocked(path, *entries);
    start = TakeStartableLocked();
  }
  // Waiters share the stored listing read-only: the cache copies it before
  // changing a listing anyone else still holds (WritableLocked).
  std::shared_ptr<const Entries> shared = entries;
  for (auto& w : waiters) w(err, shared);
  for (const auto& p : start) Start(p);
}

void ListingCache::StoreLocked(const std::string& path, std::shared_ptr<Entries> entries) {
  Listing& l = listings_[path];
  cached_entries_ -= l.entries ? l.entries->size() : 0;
  l.entries = std::move(entries);
  l.index.clear();
  for (size_t i = 0; i < l.entries->size(); ++i) l.index.emplace((*l.entries)[i].name, i);
  l.fetched = Clock::now();
  cached_entries_ += l.entries->size();
}

ListingCache::Listing* ListingCache::WritableLocked(const std::string& path) {
  auto it = listings_.find(path);
  if (it == listings_.end()) return nullptr;
  if (!FreshLocked(it->second, Clock::now())) {
    cached_entries_ -= it->second.entries->size();
    listings_.erase(it);
    return nullptr;
  }
  Listing& l = it->second;
  if (l.entries.use_count() > 1) l.entries = std::make_shared<Entries>(*l.entries);
  return &l;
}

void ListingCache::Upsert(const std::string& path, const std::string& name,
                          const proto::FsAttr& attr) {
  std::lock_guard lock(mu_);
  ++generation_;  // a fetch in flight may predate the change
  Listing* l = WritableLocked(path);
  if (l == nullptr) return;
  if (auto i = l->index.find(name); i != l->index.end()) {
    proto::FsDirEntry& e = (*l->entries)[i->second];
    e.attr = attr;
    e.ino = attr.ino;
    e.type = attr.mode & S_IFMT;
    return;
  }
  proto::FsDirEntry e;
  e.name = name;
  e.ino = attr.ino;
  e.type = attr.mode & S_IFMT;
  e.attr = attr;
  l->index.emplace(name, l->entries->size());
  l->entries->push_back(std::move(e));
  ++cached_entries_;
}

void ListingCache::Remove(const std::string& path, const std::string& name) {
  std::lock_guard lock(mu_);
  ++generation_;
  Listing* l = WritableLocked(path);
  if (l == nullptr) return;
  auto i = l->index.find(name);
  if (i == l->index.end()) return;
  size_t at = i->second;
  l->entries->erase(l->entries->begin() + static_cast<ptrdiff_t>(at));
  l->index.erase(i);
  for (auto& [n, idx] : l->index) {
    if (idx > at) --idx;
  }
  --cached_entries_;
}

void ListingCache::ForgetAttr(const std::string& path, const std::string& name) {
  std::lock_guard lock(mu_);
  ++generation_;
  Listing* l = WritableLocked(path);
  if (l == nullptr) return;
  if (auto i = l->index.find(name); i != l->index.end()) (*l->entries)[i->second].attr.reset();
}

void ListingCache::SeedEmpty(const std::string& path, const proto::FsAttr& attr,
                             uint64_t parent_ino) {
  std::lock_guard lock(mu_);
  ++generation_;
  if (cached_entries_ >= kMaxCachedEntries) return;
  auto entries = std::make_shared<Entries>(2);
  (*entries)[0].name = ".";
  (*entries)[0].attr = attr;
  (*entries)[1].name = "..";
  for (auto& e : *entries) e.type = S_IFDIR;
  (*entries)[0].ino = attr.ino;
  (*entries)[1].ino = parent_ino != 0 ? parent_ino : 1;  // readdir(3) skips inode 0
  StoreLocked(path, std::move(entries));
}

void ListingCache::SweepLocked() {
  auto now = Clock::now();
  for (auto it = listings_.begin(); it != listings_.end();) {
    if (FreshLocked(it->second, now)) {
      ++it;
      continue;
    }
    cached_entries_ -= it->second.entries->size();
    it = listings_.erase(it);
  }
}

void ListingCache::QueueChildrenLocked(const std::string& path, const Entries& entries) {
  size_t n = 0;
  for (const auto& e : entries) {
    if (n >= kAheadPerListing) break;
    if (!e.attr || !S_ISDIR(e.attr->mode) || e.name == "." || e.name == "..") continue;
    std::string child = JoinPath(path, e.name);
    if (listings_.count(child) || fetching_.count(child) || queued_.count(child)) continue;
    queued_.insert(child);
    ahead_queue_.push_back(std::move(child));
    ++n;
  }
}

std::vector<std::string> ListingCache::TakeStartableLocked() {
  std::vector<std::string> start;
  while (ahead_running_ < kAheadParallel && !ahead_queue_.empty() &&
         cached_entries_ < kMaxCachedEntries) {
    std::string p = std::move(ahead_queue_.front());
    ahead_queue_.pop_front();
    queued_.erase(p);
    if (listings_.count(p) || fetching_.count(p)) continue;
    fetching_[p].ahead = true;
    ++ahead_running_;
    start.push_back(std::move(p));
  }
  return start;
}

std::optional<ListingCache::Answer> ListingCache::Lookup(const std::string& path,
                                                         std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = listings_.find(path);
  if (it == listings_.end() || !FreshLocked(it->second, Clock::now())) return std::nullopt;
  auto e = it->second.index.find(std::string(name));
  if (e == it->second.index.end()) return Answer{};
  const proto::FsDirEntry& entry = (*it->second.entries)[e->second];
  if (!entry.attr) return std::nullopt;
  return Answer{true, *entry.attr};
}

void ListingCache::Invalidate(const std::string& path) {
  std::lock_guard lock(mu_);
  ++generation_;
  if (auto it = listings_.find(path); it != listings_.end()) {
    cached_entries_ -= it->second.entries->size();
    listings_.erase(it);
  }
}

void ListingCache::Clear() {
  std::lock_guard lock(mu_);
  ++generation_;
  listings_.clear();
  ahead_queue_.clear();
  queued_.clear();
  cached_entries_ = 0;
}

}  // namespace mproxy::fuse
