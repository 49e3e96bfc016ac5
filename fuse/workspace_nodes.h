// The workspace's inode table: FUSE node ids for remote paths, the kernel's
// lookup counts, what renames and unlinks do to them, and which entries the
// kernel may still be trusting from its caches.
#pragma once

#include <fuse_lowlevel.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace mproxy::fuse {

// `dir` + "/" + `name`, with no doubled slash when `dir` is "/".
std::string JoinPath(std::string_view dir, std::string_view name);

// What identifies a file's contents for the page cache: when an OPEN sees
// the same values as before, the kernel may keep the pages it has.
struct ContentStamp {
  int64_t mtime = 0;
  uint32_t mtime_nsec = 0;
  uint64_t size = 0;
  uint64_t remote_ino = 0;
  bool operator==(const ContentStamp&) const = default;
};

// Node ids are path based: a node is "the name `name` in directory
// `parent`", so a remote path always maps to one id while the kernel knows
// it. Ids are never reused (generation 0 is enough). A node removed or
// replaced by an unlink or rename is detached: it keeps its id until the
// kernel forgets it, but has no path any more (operations by path answer
// ESTALE; open handles keep working).
//
// So the hard links of one remote file are as many nodes, and as many
// kernel inodes with their own cached attributes and pages: OtherLinks()
// finds the other nodes of a file, through an index by remote inode number.
//
// Thread-safe: every method takes the one internal mutex (a leaf lock).
class NodeTable {
 public:
  using Clock = std::chrono::steady_clock;

  // `root`: the remote directory the mount shows, absolute.
  explicit NodeTable(std::string root);
  NodeTable(const NodeTable&) = delete;
  NodeTable& operator=(const NodeTable&) = delete;

  // The remote path of `ino`; nullopt for an unknown or detached node.
  std::optional<std::string> PathOf(fuse_ino_t ino) const;
  // The remote path of `ino`'s directory, and its name there.
  std::optional<std::pair<std::string, std::string>> Where(fuse_ino_t ino) const;
  // The remote path of `name` in directory `parent`.
  std::optional<std::string> ChildPath(fuse_ino_t parent, std::string_view name) const;

  // The node for `name` in `parent` (created when new) with one more kernel
  // reference; records whether it is a directory, the stamp, and that the kernel trusts the entry and its
  // attributes until `fresh_until`. 0 when `parent` is unknown or detached.
  fuse_ino_t Link(fuse_ino_t parent, std::string_view name, bool dir, const ContentStamp& stamp,
                  Clock::time_point fresh_until);
  // The kernel dropped `n` references; the node goes at zero.
  void Forget(fuse_ino_t ino, uint64_t n);

  // `name` in `parent` was removed: its node (if any) is detached and
  // returned (0: none).
  fuse_ino_t Unlinked(fuse_ino_t parent, std::string_view name);
  // A rename succeeded. Without `exchange` the node at the destination (if
  // any) is detached and the source node takes its place; with it, the two
  // swap places. Returns the node detached (0: none).
  fuse_ino_t Renamed(fuse_ino_t parent, std::string_view name, fuse_ino_t new_parent,
                     std::string_view new_name, bool exchange);

  // The kernel was told `name` in `parent` does not exist, until `until`.
  void NoteNegative(fuse_ino_t parent, std::string_view name, Clock::time_point until);
  // Whether the kernel may hold an entry for `name` in `parent`: a node, or
  // a negative entry not yet expired at `now`.
  bool KernelMayKnow(fuse_ino_t parent, std::string_view name, Clock::time_point now) const;
  // Whether `ino` is a directory (the root is).
  bool IsDir(fuse_ino_t ino) const;

  // The size last seen for `ino` (0: unknown, as for the root).
  uint64_t ContentSize(fuse_ino_t ino) const;

  // The remote inode number last seen for `ino` (0: unknown).
  uint64_t RemoteIno(fuse_ino_t ino) const;

  // The other nodes of the remote file `ino` stands for: the non-directory
  // nodes, detached ones included, last seen with `ino`'s remote inode
  // number (none when it is 0 or `ino` is a directory). The agent reports no
  // st_dev, so a file of another remote filesystem mounted inside the tree
  // with the same number counts too: harmless, it is only invalidated for
  // nothing.
  std::vector<fuse_ino_t> OtherLinks(fuse_ino_t ino) const;
  // `ino`'s content changed through another of its names. Its size and mtime
  // may look the same (a same-size write within the remote clock's
  // granularity), so UpdateStamp() cannot tell: TakeChangedElsewhere() says
  // so once, for its next open to drop cached pages.
  void MarkChangedElsewhere(fuse_ino_t ino);
  bool TakeChangedElsewhere(fuse_ino_t ino);

  // Remote file handles open on `ino`: a detached node is reached through
  // one (fstat of an unlinked open file has no path to go by).
  void AddHandle(fuse_ino_t ino, uint64_t fh);
  void RemoveHandle(fuse_ino_t ino, uint64_t fh);
  std::optional<uint64_t> AnyHandle(fuse_ino_t ino) const;

  // Whether `ino` was last seen without extended attributes (the agent's
  // FsAttr.no_xattrs): xattr queries about it are then answered here.
  void SetNoXattrs(fuse_ino_t ino, bool none);
  bool NoXattrs(fuse_ino_t ino) const;

  // The kernel trusts `ino`'s attributes until `until`.
  void NoteFresh(fuse_ino_t ino, Clock::time_point until);
  // Records `stamp` for `ino` and says whether it equals the one recorded
  // before (false when there was none).
  bool UpdateStamp(fuse_ino_t ino, const ContentStamp& stamp);

  // What the kernel may still hold from its caches, as of `now`: nodes whose
  // attributes (and entries) are fresh, and fresh negative entries. Clears
  // the record, so a second call returns only what was cached since.
  struct Fresh {
    std::vector<fuse_ino_t> inodes;
    struct Entry {
      fuse_ino_t parent = 0;
      std::string name;
      bool dir = false;  // a directory (negative entries are not)
    };
    std::vector<Entry> entries;
  };
  Fresh TakeFresh(Clock::time_point now);

  size_t size() const;  // nodes known, the root included

 private:
  struct Node {
    fuse_ino_t parent = 0;  // 0: the root, or detached
    std::string name;
    uint64_t nlookup = 0;
    bool detached = false;
    bool dir = false;
    bool no_xattrs = false;
    bool changed_elsewhere = false;
    std::vector<uint64_t> handles;
    std::optional<ContentStamp> stamp;
    Clock::time_point fresh_until{};
  };
  using Key = std::pair<fuse_ino_t, std::string>;

  std::optional<std::string> PathOfLocked(fuse_ino_t ino) const;
  void DetachLocked(fuse_ino_t ino);
  void MarkFreshLocked(fuse_ino_t ino, Node& node, Clock::time_point until);
  // Sets `node`'s kind and stamp, keeping by_remote_ino_ in step.
  void SetStampLocked(fuse_ino_t ino, Node& node, bool dir, const ContentStamp& stamp);
  void UnindexLocked(fuse_ino_t ino, const Node& node);

  const std::string root_;
  mutable std::mutex mu_;
  fuse_ino_t next_ino_ = FUSE_ROOT_ID + 1;
  std::unordered_map<fuse_ino_t, Node> nodes_;
  std::map<Key, fuse_ino_t> children_;
  // Non-directory nodes by remote inode number (0 is not indexed); more
  // than one under a number are the hard links of one file.
  std::unordered_multimap<uint64_t, fuse_ino_t> by_remote_ino_;
  // Nodes and negative entries the kernel may trust, with their deadline.
  std::unordered_map<fuse_ino_t, Clock::time_point> fresh_;
  std::map<Key, Clock::time_point> negative_;
};

}  // namespace mproxy::fuse
