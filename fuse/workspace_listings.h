// ListingCache: whole directory listings (LISTDIR) kept for a moment, so
// opendir, readdir and lookups in a listed directory need no round trip, and
// the subdirectories of a directory the program lists are fetched ahead in
// parallel (find, ls -R and git walk a tree one directory at a time).
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "fuse/workspace_fs.h"

namespace mproxy::fuse {

using Entries = std::vector<proto::FsDirEntry>;

// Thread-safe (one leaf mutex; callbacks run outside it).
class ListingCache {
 public:
  using Clock = std::chrono::steady_clock;
  // The listing, or nullptr when the directory is too large for one LISTDIR
  // (use OPENDIR/READDIR), or the error's errno.
  using Done = std::function<void(int err, std::shared_ptr<const Entries>)>;

  // `xattrs`: ask for each entry's no_xattrs (LISTDIR's xattrs), which
  // costs the agent a listxattr per entry.
  ListingCache(FsBackend* backend, std::chrono::milliseconds ttl, bool xattrs);

  // The listing of `path`: cached if fresh, else fetched (joining a fetch in
  // flight). `done` may run before Get returns. Then the subdirectories are
  // fetched ahead (a few at a time).
  void Get(const std::string& path, Done done);

  // What a fresh listing says of `name` in directory `path`: nullopt when
  // there is none (ask the agent); an entry without attributes never comes
  // back. found == false: the name does not exist.
  struct Answer {
    bool found = false;
    proto::FsAttr attr;
  };
  std::optional<Answer> Lookup(const std::string& path, std::string_view name);

  // `path` changed in a way not described below: its listing goes.
  void Invalidate(const std::string& path);
  // This session changed `name` in directory `path` and knows the result: a
  // fresh listing is updated instead of dropped, so the next lookups stay
  // local (tar, cp and git create many files in a row).
  void Upsert(const std::string& path, const std::string& name, const proto::FsAttr& attr);
  void Remove(const std::string& path, const std::string& name);
  // `name`'s attributes changed in a way not known here (a write).
  void ForgetAttr(const std::string& path, const std::string& name);
  // `path` was just made by this session: it is empty.
  // `parent_ino` is the remote inode number ".." shows.
  void SeedEmpty(const std::string& path, const proto::FsAttr& attr, uint64_t parent_ino);
  // Anything may have changed (a remote command ran, a rename moved a tree).
  void Clear();

 private:
  struct Listing {
    // Copied before a change while an open directory still shares it.
    std::shared_ptr<Entries> entries;
    std::unordered_map<std::string, size_t> index;  // into *entries
    Clock::time_point fetched;
  };
  // The fresh listing of `path` ready to change, or nullptr.
  Listing* WritableLocked(const std::string& path);
  void StoreLocked(const std::string& path, std::shared_ptr<Entries> entries);
  struct Fetch {
    std::vector<Done> waiters;
    bool ahead = false;  // started by prefetch, nobody waits for it yet
  };

  void Start(const std::string& path);
  void Finished(const std::string& path, uint64_t generation, proto::FsReply reply);
  void SweepLocked();  // drops listings no longer fresh
  void QueueChildrenLocked(const std::string& path, const Entries& entries);
  std::vector<std::string> TakeStartableLocked();
  bool FreshLocked(const Listing& l, Clock::time_point now) const { return now - l.fetched < ttl_; }

  FsBackend* const backend_;
  const std::chrono::milliseconds ttl_;
  const bool xattrs_;
  std::mutex mu_;
  uint64_t generation_ = 0;  // bumped by Invalidate/Clear: older fetches are not kept
  std::unordered_map<std::string, Listing> listings_;
  std::unordered_map<std::string, Fetch> fetching_;
  std::deque<std::string> ahead_queue_;
  std::unordered_set<std::string> queued_;
  size_t ahead_running_ = 0;
  size_t cached_entries_ = 0;
};

}  // namespace mproxy::fuse
