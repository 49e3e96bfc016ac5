// WorkspaceFs: the low-level FUSE operations of the workspace, each turned
// into one FsRequest and answered from the reply's callback. See
// workspace_fs.h; the inode scheme is in workspace_nodes.h.
#include "fuse/workspace_fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <limits.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "fuse/session.h"
#include "fuse/workspace_listings.h"
#include "fuse/workspace_nodes.h"

namespace mproxy::fuse {
namespace {

using Clock = NodeTable::Clock;

double Seconds(std::chrono::milliseconds ms) { return std::chrono::duration<double>(ms).count(); }

ContentStamp StampOf(const proto::FsAttr& a) {
  return {a.mtime, a.mtime_nsec, a.size, a.ino};
}

// How long a directory listing serves opendir, readdir and lookups. Local
// changes drop it at once, remote commands' exits too.
constexpr std::chrono::milliseconds kListingTtl{2000};
// A lookup in a directory no larger than this (st_size: about a thousand
// entries on ext4, a few thousand on tmpfs) lists it whole.
constexpr uint64_t kListOnLookupMaxDirSize = 64 * 1024;
// An open for reading brings the file's first bytes along (the kernel's
// first READ is then answered here): grep, git and compilers read many
// small files whole.
constexpr uint32_t kOpenReadAhead = 128 * 1024;
// Write-behind data answered but not yet written remotely, all handles
// together (WorkspaceFs::Behind).
constexpr size_t kWriteBehindBytes = 8 * 1024 * 1024;

// The bytes an OPEN brought, until the handle's first READ beyond them.
struct ReadAhead {
  fuse_ino_t ino = 0;
  std::string data;
  bool whole = false;  // data is the entire file
};

// Directories have no handles (see OpenDir). A READDIR from offset 0 takes
// the current listing whole and keeps it as a snapshot; the offsets it hands
// out name the snapshot and the index after the entry, so the reader's next
// pages come from the same listing however the directory changes meanwhile,
// as long as the snapshot is kept (the kDirSnapshots most recent).
constexpr int kDirIndexBits = 32;
constexpr uint64_t kDirIndexMask = (uint64_t{1} << kDirIndexBits) - 1;
constexpr uint64_t kDirSnapshotIds = uint64_t{1} << 30;  // offsets stay below 2^62
constexpr size_t kDirSnapshots = 256;
constexpr size_t kDirSnapshotEntries = 256 * 1024;
// Lean listings (WorkspaceFs::Lean): this many lookups of files a lean
// listing left out make every listing full for kFullListingsFor. A lookup
// counts when the directory was listed lean less than kLeanRemembered ago.
constexpr unsigned kLateLookupsForFull = 16;
constexpr std::chrono::seconds kFullListingsFor{10};
constexpr std::chrono::seconds kLeanRemembered{5};

}  // namespace

// The state every callback sees (the FUSE session's userdata).
class WorkspaceFs {
 public:
  explicit WorkspaceFs(WorkspaceOptions options)
      : o_(std::move(options)),
        log_(o_.logger ? o_.logger : spdlog::default_logger()),
        nodes_(o_.remote_root),
        list_xattrs_(o_.xattrs == XattrNamespaces::kAll),
        listings_(o_.backend, std::min(kListingTtl, o_.attr_timeout), list_xattrs_) {}
  WorkspaceFs(const WorkspaceFs&) = delete;
  WorkspaceFs& operator=(const WorkspaceFs&) = delete;

  static const fuse_lowlevel_ops& Ops();
  void set_session(FuseSession* s) { session_.store(s); }
  const WorkspaceOptions& options() const { return o_; }
  void Revalidate(std::function<void()> done);

 private:
  static WorkspaceFs* From(fuse_req_t req) {
    return static_cast<WorkspaceFs*>(fuse_req_userdata(req));
  }

  struct stat ToStat(const proto::FsAttr& a) const;
  uint32_t UidToRemote(uint32_t uid) const;
  uint32_t GidToRemote(uint32_t gid) const;
  // Whether the mount passes this extended attribute (XattrNamespaces).
  bool Passes(const char* xattr_name) const;
  // Sends `r` and runs `on_ok` with the typed reply, or answers the error.
  template <class Req, class OnOk>
  void Call(fuse_req_t req, Req r, OnOk on_ok);
  template <class Req, class OnOk, class OnErr>
  void CallOr(Req r, OnOk on_ok, OnErr on_err);
  // Answers a LOOKUP, MKDIR, MKNOD, SYMLINK or LINK with a node for
  // parent/name carrying `attr`.
  void ReplyEntry(fuse_req_t req, fuse_ino_t parent, const std::string& name,
                  const proto::FsAttr& attr);
  fuse_entry_param EntryFor(fuse_ino_t parent, const std::string& name, const proto::FsAttr& attr);
  void QueueAttrInvalidation(fuse_ino_t ino);
  // Records what a reply said about `ino` (content stamp, xattrs); returns
  // whether the content is the same as before.
  bool Learn(fuse_ino_t ino, const proto::FsAttr& attr);
  // Answers a GETATTR or SETATTR with `attr`, which the kernel may trust for
  // attr_timeout.
  void ReplyAttr(fuse_req_t req, fuse_ino_t ino, const proto::FsAttr& attr);
  // Closes a remote handle nobody waits on.
  void ReleaseRemote(uint64_t fh);
  void ReleaseRemoteDir(uint64_t fh);
  void ReplyNegative(fuse_req_t req, fuse_ino_t parent, const std::string& name);
  template <class Req>
  void Remove(fuse_req_t req, fuse_ino_t parent, const char* name);
  void LookupRemote(fuse_req_t req, fuse_ino_t parent, const std::string& dir,
                    const std::string& name);
  // What this session changed, told to the listing cache: an entry made or
  // changed with known attributes, one removed, a node changed in a way only
  // the agent knows (a write).
  void EntryKnown(fuse_ino_t parent, const std::string& name, const proto::FsAttr& attr);
  void EntryGone(fuse_ino_t parent, const std::string& name);
  void NodeKnown(fuse_ino_t ino, const proto::FsAttr& attr);
  void NodeChanged(fuse_ino_t ino);
  // `ino`'s remote file changed through `ino`: its content (a write, a
  // truncate) when `content`, else only its attributes (a link count). The
  // kernel holds the file's other names (hard links) as inodes of their own,
  // with their own cached attributes and pages: their attributes are queued
  // for invalidation (ReplyAfterInvalidations waits for them), and with
  // `content` their next open drops their pages. Returns whether there were
  // any.
  //
  // Attributes only, not pages: dropping pages waits for page locks, which
  // the kernel holds while a READ or WRITE of that inode waits for its reply,
  // and then the notifier could stall behind an unanswered request (Stop()
  // would never join it). The kernel drops the pages itself, in the reader's
  // context: at the next open (keep_cache off), and at a read through a
  // descriptor opened before, when the refreshed size or mtime differ
  // (FUSE_CAP_AUTO_INVAL_DATA).
  bool OthersChanged(fuse_ino_t ino, bool content);
  // Runs `reply` once the invalidations queued so far have reached the
  // kernel, so the caller's next stat or open of another name sees the
  // change. `holds_locks`: the request holds kernel inode locks (SETATTR,
  // FALLOCATE, LINK, UNLINK, RENAME; see
  // FuseSession::AfterAttributeInvalidations). Never for READ or WRITE:
  // they hold page locks, and an attribute invalidation of an inode being
  // evicted waits for the eviction, which waits for those page locks.
  void ReplyAfterInvalidations(bool holds_locks, std::function<void()> reply);
  // The reply to a request that changed `ino`'s remote file while holding
  // kernel inode locks (SETATTR, FALLOCATE, LINK, UNLINK, RENAME): sent at
  // once when the file has no other names (or `ino` is 0), else once the
  // invalidations OthersChanged() queued have reached the kernel.
  template <typename Reply>
  void ReplyWhenOthersKnow(fuse_ino_t ino, bool content, Reply reply) {
    if (!OthersChanged(ino, content)) return reply();
    ReplyAfterInvalidations(true, std::move(reply));
  }
  // The listing of `path` whole: from the ListingCache, or page by page
  // through a remote handle when it is too large for one LISTDIR.
  void ListWhole(const std::string& path, ListingCache::Done done);
  void FetchPages(uint64_t fh, uint64_t cookie, std::shared_ptr<Entries> got,
                  ListingCache::Done done);
  // Keeps `entries` as a snapshot and returns its id; the snapshot by id.
  uint64_t KeepSnapshot(std::shared_ptr<const Entries> entries);
  std::shared_ptr<const Entries> Snapshot(uint64_t id);
  // Its reader is at the end: the snapshot goes (no longer sharing the
  // listing, which the cache would otherwise copy before each change).
  void DropSnapshot(uint64_t id);
  using Snapshots = std::map<uint64_t, std::shared_ptr<const Entries>>;  // by id
  void EraseSnapshotLocked(Snapshots::iterator it);
  // Whether a READDIRPLUS now leaves out the files' attributes (see lean_).
  bool Lean(Clock::time_point now);
  // A lookup in `parent` was answered from its listing.
  void LookedUpListed(fuse_ino_t parent);
  // Answers a READDIR(PLUS) with the entries of snapshot `id` from `index`.
  void ServeDir(fuse_req_t req, fuse_ino_t ino, uint64_t id, const Entries& entries, size_t size,
                size_t index, bool plus);

  static void Init(void* userdata, fuse_conn_info* conn) noexcept;
  static void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept;
  static void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) noexcept;
  static void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) noexcept;
  static void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept;
  static void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                      fuse_file_info* fi) noexcept;
  static void ReadLink(fuse_req_t req, fuse_ino_t ino) noexcept;
  static void MkNod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                    dev_t rdev) noexcept;
  static void MkDir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) noexcept;
  static void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept;
  static void RmDir(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept;
  static void Symlink(fuse_req_t req, const char* link, fuse_ino_t parent,
                      const char* name) noexcept;
  static void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
                     const char* newname, unsigned flags) noexcept;
  static void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                   const char* newname) noexcept;
  static void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept;
  static void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                     fuse_file_info* fi) noexcept;
  static void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   fuse_file_info* fi) noexcept;
  static void Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
                    fuse_file_info* fi) noexcept;
  static void Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept;
  static void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept;
  static void Fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) noexcept;
  static void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept;
  static void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                      fuse_file_info* fi) noexcept;
  static void ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                          fuse_file_info* fi) noexcept;
  static void ReleaseDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept;
  static void FsyncDir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) noexcept;
  static void StatFs(fuse_req_t req, fuse_ino_t ino) noexcept;
  static void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value,
                       size_t size, int flags) noexcept;
  static void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) noexcept;
  static void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) noexcept;
  static void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) noexcept;
  static void Access(fuse_req_t req, fuse_ino_t ino, int mask) noexcept;
  static void Fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                        fuse_file_info* fi) noexcept;

  static void ReadDirCommon(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                            fuse_file_info* fi, bool plus) noexcept;
  // MKNOD, MKDIR, SYMLINK: `make(path)` gives the request for the child.
  template <class Make>
  void EntryOp(fuse_req_t req, fuse_ino_t parent, const char* name, Make make);

  const WorkspaceOptions o_;
  std::shared_ptr<spdlog::logger> log_;
  NodeTable nodes_;
  // Whether listings (LISTDIR, READDIR) ask for each entry's no_xattrs.
  // Only with every namespace passed does that spare anything: ls -l asks
  // each file for its SELinux label and ACL. Otherwise those are answered
  // here, and a file's no_xattrs still comes with its OPEN (cp -a asks
  // flistxattr).
  const bool list_xattrs_;
  ListingCache listings_;
  std::atomic<FuseSession*> session_{nullptr};
  // READDIRPLUS gives the kernel an inode per entry, whose making is most of
  // the kernel time of a walk that only wants names and types (find, or
  // anything reading d_type). So a lean listing gives attributes only for
  // directories (the walk enters them); files then cost a LOOKUP, answered
  // from the listing, when someone does want them. Once lookups show that
  // callers want them (ls -l, du, grep -r open or stat every file), listings
  // are full for a while. Leaf lock.
  struct {
    std::mutex mu;
    std::unordered_map<fuse_ino_t, Clock::time_point> dirs;  // listed lean, when
    unsigned late = 0;  // lookups a full listing would have spared
    Clock::time_point full_until{};
  } lean_;
  // Listings being read, by snapshot id (oldest first). Leaf lock.
  std::mutex snapshots_mu_;
  Snapshots snapshots_;
  size_t snapshot_entries_ = 0;
  uint64_t next_snapshot_ = 1;
  // By remote file handle. Leaf lock.
  std::mutex read_ahead_mu_;
  std::unordered_map<uint64_t, ReadAhead> read_ahead_;
  void DropReadAhead(fuse_ino_t ino);

  // Write-behind. A WRITE is answered as soon as it is queued for the agent
  // (sent "ordered": the agent runs it before anything that arrives after
  // it, Exec included). A failure is kept on the handle and is the answer of
  // its next WRITE, FLUSH (close) or FSYNC; FLUSH and FSYNC first wait for
  // the handle's writes. Not for O_SYNC/O_DSYNC handles, and at most
  // kWriteBehindBytes at once (past that, writes wait as before).
  struct Behind {
    size_t pending = 0;  // writes answered here, not yet by the agent
    int error = 0;       // the first failure not yet reported
    bool released = false;
    std::vector<std::function<void(int)>> waiters;  // run when pending is 0
  };
  // Whether this write may go behind; if so, counts it as pending. Sets
  // *error to a failure to report instead.
  bool StartBehind(uint64_t fh, size_t size, bool sync, int* error);
  void BehindDone(uint64_t fh, size_t size, int error);
  // Runs `then` with the handle's unreported failure (0: none) once its
  // writes are done: at once, on this thread, when none are pending.
  void AfterWrites(uint64_t fh, std::function<void(int)> then);
  void ForgetBehind(uint64_t fh);
  std::mutex behind_mu_;  // leaf lock
  std::unordered_map<uint64_t, Behind> behind_;  // by remote file handle
  size_t behind_bytes_ = 0;
};

struct stat WorkspaceFs::ToStat(const proto::FsAttr& a) const {
  struct stat st {};
  st.st_ino = a.ino;
  st.st_mode = a.mode;
  st.st_nlink = a.nlink;
  st.st_uid = a.uid;
  st.st_gid = a.gid;
  if (o_.owners == OwnerMapping::kLocal) {
    if (a.uid == o_.remote_uid) st.st_uid = o_.local_uid;
    if (a.gid == o_.remote_gid) st.st_gid = o_.local_gid;
  }
  st.st_size = static_cast<off_t>(a.size);
  st.st_blocks = static_cast<blkcnt_t>(a.blocks);
  st.st_blksize = static_cast<blksize_t>(a.blksize);
  st.st_rdev = a.rdev;
  st.st_atim = {a.atime, static_cast<long>(a.atime_nsec)};
  st.st_mtim = {a.mtime, static_cast<long>(a.mtime_nsec)};
  st.st_ctim = {a.ctime, static_cast<long>(a.ctime_nsec)};
  return st;
}

uint32_t WorkspaceFs::UidToRemote(uint32_t uid) const {
  return o_.owners == OwnerMapping::kLocal && uid == o_.local_uid ? o_.remote_uid : uid;
}

uint32_t WorkspaceFs::GidToRemote(uint32_t gid) const {
  return o_.owners == OwnerMapping::kLocal && gid == o_.local_gid ? o_.remote_gid : gid;
}

template <class Req, class OnOk, class OnErr>
void WorkspaceFs::CallOr(Req r, OnOk on_ok, OnErr on_err) {
  o_.backend->Submit(std::move(r), [on_ok = std::move(on_ok),
                                    on_err = std::move(on_err)](proto::FsReply reply) mutable {
    auto parsed = proto::ParseFsReplyFor<Req>(reply);
    if (!parsed) return on_err(proto::FsErrno(parsed.error()));
    on_ok(std::move(parsed).value());
  });
}

template <class Req, class OnOk>
void WorkspaceFs::Call(fuse_req_t req, Req r, OnOk on_ok) {
  CallOr(std::move(r), std::move(on_ok), [req](int err) { fuse_reply_err(req, err); });
}

fuse_entry_param WorkspaceFs::EntryFor(fuse_ino_t parent, const std::string& name,
                                       const proto::FsAttr& attr) {
  fuse_entry_param e{};
  auto now = Clock::now();
  e.ino = nodes_.Link(parent, name, S_ISDIR(attr.mode), StampOf(attr),
                      now + std::max(o_.attr_timeout, o_.entry_timeout));
  if (e.ino != 0) nodes_.SetNoXattrs(e.ino, attr.no_xattrs);
  e.attr = ToStat(attr);
  e.attr_timeout = Seconds(o_.attr_timeout);
  e.entry_timeout = Seconds(o_.entry_timeout);
  return e;
}

void WorkspaceFs::ReplyEntry(fuse_req_t req, fuse_ino_t parent, const std::string& name,
                             const proto::FsAttr& attr) {
  fuse_entry_param e = EntryFor(parent, name, attr);
  if (e.ino == 0) {
    fuse_reply_err(req, ESTALE);
    return;
  }
  // The kernel did not take the entry (the caller was interrupted): it will
  // never forget it, so the reference is dropped here.
  if (fuse_reply_entry(req, &e) != 0) nodes_.Forget(e.ino, 1);
}

void WorkspaceFs::QueueAttrInvalidation(fuse_ino_t ino) {
  if (FuseSession* s = session_.load()) s->InvalidateAttributes(ino);
}

bool WorkspaceFs::Learn(fuse_ino_t ino, const proto::FsAttr& attr) {
  nodes_.SetNoXattrs(ino, attr.no_xattrs);
  return nodes_.UpdateStamp(ino, StampOf(attr));
}

void WorkspaceFs::ReplyAttr(fuse_req_t req, fuse_ino_t ino, const proto::FsAttr& attr) {
  Learn(ino, attr);
  nodes_.NoteFresh(ino, Clock::now() + o_.attr_timeout);
  struct stat st = ToStat(attr);
  fuse_reply_attr(req, &st, Seconds(o_.attr_timeout));
}

void WorkspaceFs::ReleaseRemote(uint64_t fh) {
  o_.backend->SubmitLater(proto::FsReleaseRequest{fh}, [](proto::FsReply) {});
}

void WorkspaceFs::ReleaseRemoteDir(uint64_t fh) {
  o_.backend->SubmitLater(proto::FsReleasedirRequest{fh}, [](proto::FsReply) {});
}

void WorkspaceFs::EntryKnown(fuse_ino_t parent, const std::string& name,
                             const proto::FsAttr& attr) {
  auto dir = nodes_.PathOf(parent);
  if (!dir) return;
  listings_.Upsert(*dir, name, attr);
  // A directory this session just made is empty: lookups in it stay local.
  if (S_ISDIR(attr.mode)) {
    if (attr.nlink <= 2) listings_.SeedEmpty(JoinPath(*dir, name), attr, nodes_.RemoteIno(parent));
  }
}

void WorkspaceFs::EntryGone(fuse_ino_t parent, const std::string& name) {
  auto dir = nodes_.PathOf(parent);
  if (!dir) return;
  listings_.Remove(*dir, name);
  listings_.Invalidate(JoinPath(*dir, name));
}

void WorkspaceFs::NodeKnown(fuse_ino_t ino, const proto::FsAttr& attr) {
  if (auto where = nodes_.Where(ino)) listings_.Upsert(where->first, where->second, attr);
}

void WorkspaceFs::NodeChanged(fuse_ino_t ino) {
  if (auto where = nodes_.Where(ino)) listings_.ForgetAttr(where->first, where->second);
}

bool WorkspaceFs::OthersChanged(fuse_ino_t ino, bool content) {
  std::vector<fuse_ino_t> others = nodes_.OtherLinks(ino);
  for (fuse_ino_t other : others) {
    if (content) {
      nodes_.MarkChangedElsewhere(other);
      DropReadAhead(other);
    }
    NodeChanged(other);
    QueueAttrInvalidation(other);
  }
  return !others.empty();
}

void WorkspaceFs::ReplyAfterInvalidations(bool holds_locks, std::function<void()> reply) {
  FuseSession* s = session_.load();
  if (s == nullptr) return reply();
  if (holds_locks) return s->AfterAttributeInvalidations(std::move(reply));
  s->AfterInvalidations(std::move(reply));
}

void WorkspaceFs::Revalidate(std::function<void()> done) {
  listings_.Clear();
  NodeTable::Fresh fresh = nodes_.TakeFresh(Clock::now());
  FuseSession* s = session_.load();
  if (s == nullptr || (fresh.inodes.empty() && fresh.entries.empty())) {
    done();
    return;
  }
  log_->debug("workspace {}: revalidating {} inodes, {} entries", o_.remote_root,
              fresh.inodes.size(), fresh.entries.size());
  for (fuse_ino_t ino : fresh.inodes) s->InvalidateAttributes(ino);
  // Expired, not invalidated: an invalidated directory would look deleted to
  // a process whose working directory it is. Where the kernel cannot expire,
  // directories keep their entries until the entry timeout.
  for (auto& e : fresh.entries) s->ExpireEntry(e.parent, std::move(e.name), !e.dir);
  s->AfterInvalidations(std::move(done));
}

// --- callbacks ---------------------------------------------------------------

void WorkspaceFs::Init(void* userdata, fuse_conn_info* conn) noexcept {
  auto* fs = static_cast<WorkspaceFs*>(userdata);
  auto want = [conn](unsigned cap) {
    if (conn->capable & cap) conn->want |= cap;
  };
  want(FUSE_CAP_ASYNC_READ);
  want(FUSE_CAP_ATOMIC_O_TRUNC);
  want(FUSE_CAP_AUTO_INVAL_DATA);  // changed mtime or size -> page cache dropped
  want(FUSE_CAP_READDIRPLUS);      // listings carry attributes: no lookup per entry
  want(FUSE_CAP_PARALLEL_DIROPS);
  want(FUSE_CAP_CACHE_SYMLINKS);
  want(FUSE_CAP_HANDLE_KILLPRIV);  // the remote kernel clears set-id bits itself
  // Every READDIRPLUS; READDIR only for callers that do not want attributes.
  conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
  // Writes go straight to the remote host (close-to-open holds without
  // flushing anything), so neither writeback caching nor splice.
  conn->want &= ~(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
                  FUSE_CAP_SPLICE_MOVE);
  conn->max_write = proto::kFsMaxIo;
  conn->max_readahead = std::min<unsigned>(conn->max_readahead, proto::kFsMaxIo);
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  conn->time_gran = 1;
  fs->log_->debug("workspace {}: FUSE capable {:#x} want {:#x}", fs->o_.remote_root,
                  conn->capable, conn->want);
}

void WorkspaceFs::ReplyNegative(fuse_req_t req, fuse_ino_t parent, const std::string& name) {
  if (o_.negative_timeout.count() == 0) return (void)fuse_reply_err(req, ENOENT);
  fuse_entry_param e{};  // ino 0: "does not exist", cached this long
  e.entry_timeout = Seconds(o_.negative_timeout);
  nodes_.NoteNegative(parent, name, Clock::now() + o_.negative_timeout);
  fuse_reply_entry(req, &e);
}

void WorkspaceFs::LookupRemote(fuse_req_t req, fuse_ino_t parent, const std::string& dir,
                               const std::string& name) {
  proto::FsGetattrRequest r;
  r.path = JoinPath(dir, name);
  CallOr(
      std::move(r),
      [this, req, parent, name](proto::FsAttrReply a) { ReplyEntry(req, parent, name, a.attr); },
      [this, req, parent, name](int err) {
        if (err == ENOENT) return ReplyNegative(req, parent, name);
        fuse_reply_err(req, err);
      });
}

void WorkspaceFs::Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept {
  WorkspaceFs* fs = From(req);
  auto dir = fs->nodes_.PathOf(parent);
  if (!dir) return (void)fuse_reply_err(req, ESTALE);
  std::string n = name;
  // A name too long for the remote filesystem is its error to give.
  if (n.size() > NAME_MAX) return fs->LookupRemote(req, parent, *dir, n);
  if (auto known = fs->listings_.Lookup(*dir, n)) {
    if (known->found) {
      fs->LookedUpListed(parent);
      return fs->ReplyEntry(req, parent, n, known->attr);
    }
    return fs->ReplyNegative(req, parent, n);
  }
  // A small directory is listed whole instead: the names looked up next in
  // it (git's lstat of every tracked file, a compiler's include probes) are
  // answered here, and lookups meanwhile wait for the same listing.
  if (fs->nodes_.ContentSize(parent) > kListOnLookupMaxDirSize) {
    return fs->LookupRemote(req, parent, *dir, n);
  }
  fs->listings_.Get(*dir, [fs, req, parent, d = *dir, n](int err,
                                                        std::shared_ptr<const Entries> entries) {
    if (err != 0 || !entries) return fs->LookupRemote(req, parent, d, n);
    for (const auto& e : *entries) {
      if (e.name != n) continue;
      if (!e.attr) return fs->LookupRemote(req, parent, d, n);
      return fs->ReplyEntry(req, parent, n, *e.attr);
    }
    fs->ReplyNegative(req, parent, n);
  });
}

void WorkspaceFs::Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) noexcept {
  From(req)->nodes_.Forget(ino, nlookup);
  fuse_reply_none(req);
}

void WorkspaceFs::ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) noexcept {
  WorkspaceFs* fs = From(req);
  for (size_t i = 0; i < count; ++i) fs->nodes_.Forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void WorkspaceFs::GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  WorkspaceFs* fs = From(req);
  proto::FsGetattrRequest r;
  // A directory has no remote handle (fi->fh is 0).
  if (fi != nullptr && !fs->nodes_.IsDir(ino)) {
    r.fh = fi->fh;
  } else if (r.path = fs->nodes_.PathOf(ino); !r.path) {
    r.fh = fs->nodes_.AnyHandle(ino);  // unlinked, but open
    if (!r.fh) return (void)fuse_reply_err(req, ESTALE);
  }
  fs->Call(req, std::move(r),
           [fs, req, ino](proto::FsAttrReply a) { fs->ReplyAttr(req, ino, a.attr); });
}

void WorkspaceFs::SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                          fuse_file_info* fi) noexcept {
  WorkspaceFs* fs = From(req);
  proto::FsSetattrRequest r;
  if (fi != nullptr && !fs->nodes_.IsDir(ino)) {
    r.fh = fi->fh;
  } else {
    r.path = fs->nodes_.PathOf(ino);
    if (!r.path) return (void)fuse_reply_err(req, ESTALE);
  }
  if (to_set & FUSE_SET_ATTR_MODE) r.mode = attr->st_mode & 07777;
  if (to_set & FUSE_SET_ATTR_UID) r.uid = fs->UidToRemote(attr->st_uid);
  if (to_set & FUSE_SET_ATTR_GID) r.gid = fs->GidToRemote(attr->st_gid);
  if (to_set & FUSE_SET_ATTR_SIZE) {
    if (attr->st_size < 0) return (void)fuse_reply_err(req, EINVAL);
    fs->DropReadAhead(ino);
    r.size = static_cast<uint64_t>(attr->st_size);
  }
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    r.atime_now = true;
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    r.atime = attr->st_atim.tv_sec;
    r.atime_nsec = static_cast<uint32_t>(attr->st_atim.tv_nsec);
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    r.mtime_now = true;
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    r.mtime = attr->st_mtim.tv_sec;
    r.mtime_nsec = static_cast<uint32_t>(attr->st_mtim.tv_nsec);
  }
  // Nothing to set: with FUSE_HANDLE_KILLPRIV that is what chown(f, -1, -1)
  // becomes, and what a write or truncate by a caller without CAP_FSETID
  // sends to drop the set-id bits. chown(-1, -1) on the remote side does
  // exactly that there (4294967295 is -1 to chown).
  constexpr int kChanges = FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID |
                           FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
                           FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW;
  if ((to_set & kChanges) == 0) r.uid = r.gid = std::numeric_limits<uint32_t>::max();
  bool content = (to_set & FUSE_SET_ATTR_SIZE) != 0;
  fs->Call(req, std::move(r), [fs, req, ino, content](proto::FsAttrReply a) {
    fs->NodeKnown(ino, a.attr);
    // truncate(2) has no close to wait for: the other names are right once
    // it returns.
    fs->ReplyWhenOthersKnow(ino, content,
                            [fs, req, ino, attr = a.attr] { fs->ReplyAttr(req, ino, attr); });
  });
}

void WorkspaceFs::ReadLink(fuse_req_t req, fuse_ino_t ino) noexcept {
  WorkspaceFs* fs = From(req);
  auto path = fs->nodes_.PathOf(ino);
  if (!path) return (void)fuse_reply_err(req, ESTALE);
  fs->Call(req, proto::FsReadlinkRequest{std::move(*path)},
           [req](proto::FsReadlinkReply r) { fuse_reply_readlink(req, r.target.c_str()); });
}

// MKNOD, MKDIR and SYMLINK: a request for the child's path, answered with an
// entry for it.
template <class Make>
void WorkspaceFs::EntryOp(fuse_req_t req, fuse_ino_t parent, const char* name, Make make) {
  auto path = nodes_.ChildPath(parent, name);
  if (!path) return (void)fuse_reply_err(req, ESTALE);
  // The three share their reply type.
  Call(req, make(std::move(*path)),
       [this, req, parent, n = std::string(name)](proto::FsAttrReply a) {
         EntryKnown(parent, n, a.attr);
         ReplyEntry(req, parent, n, a.attr);
       });
}

void WorkspaceFs::MkNod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                        dev_t rdev) noexcept {
  From(req)->EntryOp(req, parent, name, [mode, rdev](std::string path) {
    return proto::FsMknodRequest{std::move(path), static_cast<uint32_t>(mode),
                                 static_cast<uint64_t>(rdev)};
  });
}

void WorkspaceFs::MkDir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) noexcept {
  From(req)->EntryOp(req, parent, name, [mode](std::string path) {
    return proto::FsMkdirRequest{std::move(path), static_cast<uint32_t>(mode & 07777)};
  });
}

void WorkspaceFs::Symlink(fuse_req_t req, const char* link, fuse_ino_t parent,
                          const char* name) noexcept {
  From(req)->EntryOp(req, parent, name, [link](std::string path) {
    return proto::FsSymlinkRequest{std::move(path), link};
  });
}

// UNLINK and RMDIR: the name goes from the listing and its node is detached.
template <class Req>
void WorkspaceFs::Remove(fuse_req_t req, fuse_ino_t parent, const char* name) {
  auto path = nodes_.ChildPath(parent, name);
  if (!path) return (void)fuse_reply_err(req, ESTALE);
  Call(req, Req{std::move(*path)}, [this, req, parent, n = std::string(name)](proto::FsEmptyReply) {
    EntryGone(parent, n);
    // The file's other names have one link less.
    ReplyWhenOthersKnow(nodes_.Unlinked(parent, n), false, [req] { fuse_reply_err(req, 0); });
  });
}

void WorkspaceFs::Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept {
  From(req)->Remove<proto::FsUnlinkRequest>(req, parent, name);
}

void WorkspaceFs::RmDir(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept {
  From(req)->Remove<proto::FsRmdirRequest>(req, parent, name);
}

void WorkspaceFs::Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
                         const char* newname, unsigned flags) noexcept {
  WorkspaceFs* fs = From(req);
  if (flags & ~static_cast<unsigned>(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
    return (void)fuse_reply_err(req, EINVAL);  // RENAME_WHITEOUT: overlayfs only
  }
  auto from = fs->nodes_.ChildPath(parent, name);
  auto to = fs->nodes_.ChildPath(newparent, newname);
  if (!from || !to) return (void)fuse_reply_err(req, ESTALE);
  proto::FsRenameRequest r{std::move(*from), std::move(*to), proto::RenameFlagsFromHost(flags)};
  fs->Call(req, std::move(r),
           [fs, req, parent, newparent, n = std::string(name), nn = std::string(newname),
            flags](proto::FsEmptyReply) {
             fs->listings_.Clear();  // a tree moved: its listings' paths are stale
             fuse_ino_t replaced =
                 fs->nodes_.Renamed(parent, n, newparent, nn, (flags & RENAME_EXCHANGE) != 0);
             // The replaced file's other names have one link less.
             fs->ReplyWhenOthersKnow(replaced, false, [req] { fuse_reply_err(req, 0); });
           });
}

void WorkspaceFs::Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                       const char* newname) noexcept {
  WorkspaceFs* fs = From(req);
  auto from = fs->nodes_.PathOf(ino);
  auto to = fs->nodes_.ChildPath(newparent, newname);
  if (!from || !to) return (void)fuse_reply_err(req, ESTALE);
  fs->Call(req, proto::FsLinkRequest{std::move(*from), std::move(*to)},
           [fs, req, ino, newparent, n = std::string(newname)](proto::FsAttrReply a) {
             // The old name's link count changed too, and its other names'.
             fs->QueueAttrInvalidation(ino);
             fs->NodeChanged(ino);
             fs->EntryKnown(newparent, n, a.attr);
             fs->ReplyWhenOthersKnow(ino, false, [fs, req, newparent, n, attr = a.attr] {
               fs->ReplyEntry(req, newparent, n, attr);
             });
           });
}

void WorkspaceFs::Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  WorkspaceFs* fs = From(req);
  auto path = fs->nodes_.PathOf(ino);
  if (!path) return (void)fuse_reply_err(req, ESTALE);
  proto::FsOpenRequest r{std::move(*path), proto::OpenFlagsFromHost(fi->flags), 0};
  if ((fi->flags & O_ACCMODE) != O_WRONLY && (fi->flags & O_TRUNC) == 0) {
    r.read_ahead = kOpenReadAhead;
  }
  fuse_file_info info = *fi;
  // A descriptor that cannot write has nothing for FLUSH to wait for or
  // report: its close() makes no round trip into this process.
  if ((fi->flags & O_ACCMODE) == O_RDONLY) info.noflush = 1;
  fs->Call(req, std::move(r), [fs, req, ino, info](proto::FsOpenReply o) mutable {
    info.fh = o.fh;
    if (o.read_ahead_done) {
      bool whole = o.data.size() < kOpenReadAhead;
      std::lock_guard lock(fs->read_ahead_mu_);
      fs->read_ahead_[o.fh] = ReadAhead{ino, std::move(o.data), whole};
    }
    // Pages cached from the file as the kernel last saw it stay only if the
    // file is unchanged; otherwise the kernel also relearns its attributes.
    bool elsewhere = fs->nodes_.TakeChangedElsewhere(ino);
    bool same = fs->Learn(ino, o.attr) && !elsewhere;
    info.keep_cache = same ? 1 : 0;
    if (!same) fs->QueueAttrInvalidation(ino);
    fs->nodes_.AddHandle(ino, o.fh);
    auto reply = [fs, req, ino, info, fh = o.fh] {
      if (fuse_reply_open(req, &info) != 0) {
        fs->nodes_.RemoveHandle(ino, fh);
        fs->ReleaseRemote(fh);
      }
    };
    // Written through another name (whose descriptor may still be open):
    // the reads that follow go by the size the kernel holds, so its
    // invalidation must have arrived.
    if (elsewhere) return fs->ReplyAfterInvalidations(false, std::move(reply));
    reply();
  });
}

void WorkspaceFs::Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                         fuse_file_info* fi) noexcept {
  WorkspaceFs* fs = From(req);
  auto path = fs->nodes_.ChildPath(parent, name);
  if (!path) return (void)fuse_reply_err(req, ESTALE);
  proto::FsOpenRequest r{std::move(*path),
                         proto::OpenFlagsFromHost(fi->flags) | proto::FsOpenFlag::kCreat,
                         static_cast<uint32_t>(mode & 07777)};
  fuse_file_info info = *fi;
  fs->Call(req, std::move(r),
           [fs, req, parent, n = std::string(name), info](proto::FsOpenReply o) mutable {
             info.fh = o.fh;
             fs->EntryKnown(parent, n, o.attr);
             fuse_entry_param e = fs->EntryFor(parent, n, o.attr);
             if (e.ino == 0) {
               fs->ReleaseRemote(o.fh);
               return (void)fuse_reply_err(req, ESTALE);
             }
             fs->nodes_.AddHandle(e.ino, o.fh);
             if (fuse_reply_create(req, &e, &info) != 0) {
               fs->nodes_.RemoveHandle(e.ino, o.fh);
               fs->nodes_.Forget(e.ino, 1);
               fs->ReleaseRemote(o.fh);
             }
           });
}

void WorkspaceFs::DropReadAhead(fuse_ino_t ino) {
  std::lock_guard lock(read_ahead_mu_);
  for (auto it = read_ahead_.begin(); it != read_ahead_.end();) {
    it = it->second.ino == ino ? read_ahead_.erase(it) : std::next(it);
  }
}

void WorkspaceFs::Read(fuse_req_t req, fuse_ino_t, size_t size, off_t off,
                       fuse_file_info* fi) noexcept {
  WorkspaceFs* fs = From(req);
  if (off < 0) return (void)fuse_reply_err(req, EINVAL);
  {
    std::unique_lock lock(fs->read_ahead_mu_);
    auto it = fs->read_ahead_.find(fi->fh);
    if (it != fs->read_ahead_.end()) {
      const ReadAhead& ra = it->second;
      auto from = static_cast<size_t>(off);
      if (from + size <= ra.data.size() || (ra.whole && from <= ra.data.size())) {
        size_t n = std::min(size, ra.data.size() - from);
        std::string slice = ra.data.substr(from, n);
        if (from + n >= ra.data.size()) fs->read_ahead_.erase(it);  // used up
        lock.unlock();
        return (void)fuse_reply_buf(req, slice.data(), slice.size());
      }
      fs->read_ahead_.erase(it);  // reading elsewhere: it has done its job
    }
  }
  proto::FsReadRequest r{fi->fh, static_cast<uint64_t>(off),
                         static_cast<uint32_t>(std::min<size_t>(size, proto::kFsMaxIo))};
  fs->Call(req, r, [req](proto::FsReadReply d) {
    fuse_reply_buf(req, d.data.data(), d.data.size());
  });
}

bool WorkspaceFs::StartBehind(uint64_t fh, size_t size, bool sync, int* error) {
  std::lock_guard lock(behind_mu_);
  Behind& b = behind_[fh];
  if (b.error != 0) {
    *error = std::exchange(b.error, 0);
    return false;
  }
  if (sync || behind_bytes_ + size > kWriteBehindBytes) return false;
  ++b.pending;
  behind_bytes_ += size;
  return true;
}

void WorkspaceFs::BehindDone(uint64_t fh, size_t size, int error) {
  std::vector<std::function<void(int)>> waiters;
  int report = 0;
  {
    std::lock_guard lock(behind_mu_);
    behind_bytes_ -= size;
    auto it = behind_.find(fh);
    if (it == behind_.end()) return;
    Behind& b = it->second;
    if (error != 0 && b.error == 0) b.error = error;
    if (--b.pending != 0) return;
    if (b.released) {
      // Nobody is left to tell: the descriptor was closed without a FLUSH
      // (an mmap written back after close) or its close already returned.
      if (b.error != 0) {
        log_->warn("workspace {}: a write after close failed: {}", o_.remote_root,
                   std::strerror(b.error));
      }
      behind_.erase(it);
      return;
    }
    if (b.waiters.empty()) return;
    report = std::exchange(b.error, 0);
    waiters.swap(b.waiters);
  }
  for (auto& w : waiters) w(report);
}

void WorkspaceFs::AfterWrites(uint64_t fh, std::function<void(int)> then) {
  int report = 0;
  bool send_now = false;
  {
    std::lock_guard lock(behind_mu_);
    auto it = behind_.find(fh);
    if (it != behind_.end()) {
      if (it->second.pending != 0) {
        it->second.waiters.push_back(std::move(then));
        send_now = true;
      } else {
        report = std::exchange(it->second.error, 0);
      }
    }
  }
  if (send_now) return o_.backend->SendNow();
  then(report);
}

void WorkspaceFs::ForgetBehind(uint64_t fh) {
  std::lock_guard lock(behind_mu_);
  auto it = behind_.find(fh);
  if (it == behind_.end()) return;
  if (it->second.pending == 0) return (void)behind_.erase(it);
  it->second.released = true;
}

void WorkspaceFs::Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
                        fuse_file_info* fi) noexcept {
  WorkspaceFs* fs = From(req);
  if (off < 0) return (void)fuse_reply_err(req, EINVAL);
  size = std::min<size_t>(size, proto::kFsMaxIo);  // max_write says so already
  fs->DropReadAhead(ino);
  proto::FsWriteRequest r{fi->fh, static_cast<uint64_t>(off), std::string(buf, size)};
  int failed = 0;
  const bool sync = (fi->flags & (O_SYNC | O_DSYNC)) != 0;
  if (fs->StartBehind(fi->fh, size, sync, &failed)) {
    r.ordered = true;
    fs->NodeChanged(ino);
    fs->OthersChanged(ino, true);
    fs->o_.backend->SubmitLater(std::move(r), [fs, ino, fh = fi->fh, size](proto::FsReply reply) {
      auto w = proto::ParseFsReplyFor<proto::FsWriteRequest>(reply);
      int error = w ? 0 : proto::FsErrno(w.error());
      // A short ordered write is a failure (the agent says which).
      if (w && w->written != size) error = EIO;
      fs->NodeChanged(ino);  // a listing fetched meanwhile may hold the old size
      fs->BehindDone(fh, size, error);
    });
    return (void)fuse_reply_write(req, size);
  }
  if (failed != 0) return (void)fuse_reply_err(req, failed);
  fs->Call(req, std::move(r), [fs, req, ino](proto::FsWriteReply w) {
    fs->NodeChanged(ino);  // its size and times in a listing are old now
    // Queued before the reply, so the FLUSH of close() or an open of another
    // name that follows finds them ahead of it (a WRITE reply must not wait:
    // see ReplyAfterInvalidations).
    fs->OthersChanged(ino, true);
    fuse_reply_write(req, static_cast<size_t>(w.written));
  });
}

void WorkspaceFs::Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  // close() reports a failed write-behind, once the handle's writes are
  // done. Once it returns the file's other names show the writes too: the
  // invalidations the writes queued must have arrived.
  WorkspaceFs* fs = From(req);
  fs->AfterWrites(fi->fh, [fs, req, ino](int error) {
    if (error != 0 || fs->nodes_.OtherLinks(ino).empty()) return (void)fuse_reply_err(req, error);
    fs->ReplyAfterInvalidations(false, [req] { fuse_reply_err(req, 0); });
  });
}

void WorkspaceFs::Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  {
    std::lock_guard lock(From(req)->read_ahead_mu_);
    From(req)->read_ahead_.erase(fi->fh);
  }
  From(req)->nodes_.RemoveHandle(ino, fi->fh);
  From(req)->ForgetBehind(fi->fh);
  From(req)->ReleaseRemote(fi->fh);
  fuse_reply_err(req, 0);
}

void WorkspaceFs::Fsync(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) noexcept {
  WorkspaceFs* fs = From(req);
  fs->AfterWrites(fi->fh, [fs, req, fh = fi->fh, datasync](int error) {
    if (error != 0) return (void)fuse_reply_err(req, error);
    fs->Call(req, proto::FsFsyncRequest{fh, datasync != 0},
             [req](proto::FsEmptyReply) { fuse_reply_err(req, 0); });
  });
}

// A directory needs no handle: every READDIR says where it is (ino and
// offset), and the offsets name the listing it reads (kDirIndexBits).
//
// Not taken: refusing OPENDIR with ENOSYS (FUSE_CAP_NO_OPENDIR_SUPPORT),
// after which the kernel sends no OPENDIR or RELEASEDIR at all. It spared
// nothing measurable (find 1.96x against sshfs before, 1.95x after), and it
// makes the kernel keep each directory's entries (FOPEN_CACHE_DIR) for as
// long as the directory's mtime stays the same, which is too long: on a
// remote filesystem with coarse timestamps, a change made within the same
// clock tick as the listing keeps the mtime, and the kernel would show the
// old entries until the next change. So no cache_readdir either; the
// listing cache's 2 seconds bound how stale a listing gets.
void WorkspaceFs::OpenDir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) noexcept {
  fuse_file_info info = *fi;
  info.fh = 0;
  fuse_reply_open(req, &info);
}

void WorkspaceFs::ListWhole(const std::string& path, ListingCache::Done done) {
  listings_.Get(path, [this, path, done](int err, std::shared_ptr<const Entries> entries) mutable {
    if (err != 0 || entries) return done(err, std::move(entries));
    // Too large for one LISTDIR: a remote handle, read page by page.
    CallOr(
        proto::FsOpendirRequest{path},
        [this, done](proto::FsOpendirReply o) mutable {
          FetchPages(o.fh, 0, std::make_shared<Entries>(), std::move(done));
        },
        [done](int e) { done(e, nullptr); });
  });
}

void WorkspaceFs::FetchPages(uint64_t fh, uint64_t cookie, std::shared_ptr<Entries> got,
                             ListingCache::Done done) {
  CallOr(
      proto::FsReaddirRequest{fh, cookie, proto::kFsMaxReaddirBytes, list_xattrs_},
      [this, fh, got, done](proto::FsReaddirReply rd) mutable {
        bool more = !rd.eof && !rd.entries.empty();
        uint64_t next = rd.entries.empty() ? 0 : rd.entries.back().offset;
        std::move(rd.entries.begin(), rd.entries.end(), std::back_inserter(*got));
        if (more) return FetchPages(fh, next, std::move(got), std::move(done));
        ReleaseRemoteDir(fh);
        done(0, std::move(got));
      },
      [this, fh, done](int err) {
        ReleaseRemoteDir(fh);
        done(err, nullptr);
      });
}

uint64_t WorkspaceFs::KeepSnapshot(std::shared_ptr<const Entries> entries) {
  std::lock_guard lock(snapshots_mu_);
  if (next_snapshot_ == kDirSnapshotIds) {
    // The ids start over: readers of the old ones go on from the current
    // listing, as for any snapshot no longer kept.
    while (!snapshots_.empty()) EraseSnapshotLocked(snapshots_.begin());
    next_snapshot_ = 1;
  }
  uint64_t id = next_snapshot_++;
  snapshot_entries_ += entries->size();
  snapshots_.emplace(id, std::move(entries));
  // The oldest go first; the one just kept stays.
  while (snapshots_.size() > 1 &&
         (snapshots_.size() > kDirSnapshots || snapshot_entries_ > kDirSnapshotEntries)) {
    EraseSnapshotLocked(snapshots_.begin());
  }
  return id;
}

void WorkspaceFs::EraseSnapshotLocked(Snapshots::iterator it) {
  snapshot_entries_ -= it->second->size();
  snapshots_.erase(it);
}

std::shared_ptr<const Entries> WorkspaceFs::Snapshot(uint64_t id) {
  std::lock_guard lock(snapshots_mu_);
  auto it = snapshots_.find(id);
  return it != snapshots_.end() ? it->second : nullptr;
}

bool WorkspaceFs::Lean(Clock::time_point now) {
  std::lock_guard lock(lean_.mu);
  return now >= lean_.full_until;
}

void WorkspaceFs::LookedUpListed(fuse_ino_t parent) {
  auto now = Clock::now();
  std::lock_guard lock(lean_.mu);
  auto it = lean_.dirs.find(parent);
  if (it == lean_.dirs.end() || now - it->second > kLeanRemembered) return;
  if (++lean_.late < kLateLookupsForFull) return;
  log_->debug("workspace {}: {} lookups of files left out of listings: full listings for {} s",
              o_.remote_root, lean_.late, kFullListingsFor.count());
  lean_.late = 0;
  lean_.dirs.clear();
  lean_.full_until = now + kFullListingsFor;
}

void WorkspaceFs::DropSnapshot(uint64_t id) {
  std::lock_guard lock(snapshots_mu_);
  if (auto it = snapshots_.find(id); it != snapshots_.end()) EraseSnapshotLocked(it);
}

void WorkspaceFs::ServeDir(fuse_req_t req, fuse_ino_t ino, uint64_t id, const Entries& entries,
                           size_t size, size_t index, bool plus) {
  // Past the last entry: the reader is done (a read after the end finds
  // the current listing, from the same index).
  if (index >= entries.size()) {
    DropSnapshot(id);
    return (void)fuse_reply_buf(req, nullptr, 0);
  }
  std::string buf(size, '\0');
  size_t used = 0;
  std::vector<fuse_ino_t> linked;
  auto now = Clock::now();
  const bool lean = plus && Lean(now);
  bool left_out = false;
  for (size_t i = index; i < entries.size() && i < kDirIndexMask; ++i) {
    const proto::FsDirEntry& de = entries[i];
    const char* name = de.name.c_str();
    bool dot = de.name == "." || de.name == "..";
    auto next = static_cast<off_t>(id << kDirIndexBits | (i + 1));
    size_t need = plus ? fuse_add_direntry_plus(req, nullptr, 0, name, nullptr, 0)
                       : fuse_add_direntry(req, nullptr, 0, name, nullptr, 0);
    if (used + need > size) break;
    if (plus) {
      fuse_entry_param e{};
      // Lean, a file gets a node only when the kernel may already hold an
      // entry for it, which then stays true to the listing.
      if (!dot && de.attr &&
          (!lean || S_ISDIR(de.attr->mode) || nodes_.KernelMayKnow(ino, de.name, now))) {
        e = EntryFor(ino, de.name, *de.attr);
        if (e.ino != 0) linked.push_back(e.ino);
      } else {
        // No node: the kernel takes the name and type only.
        e.attr.st_ino = de.ino;
        e.attr.st_mode = de.attr ? de.attr->mode & S_IFMT : de.type;
        left_out = left_out || (!dot && de.attr);
      }
      fuse_add_direntry_plus(req, buf.data() + used, size - used, name, &e, next);
    } else {
      struct stat st {};
      st.st_ino = de.ino;
      st.st_mode = de.attr ? de.attr->mode : de.type;
      fuse_add_direntry(req, buf.data() + used, size - used, name, &st, next);
    }
    used += need;
  }
  if (left_out) {
    std::lock_guard lock(lean_.mu);
    if (lean_.dirs.size() >= 4096) lean_.dirs.clear();
    lean_.dirs[ino] = now;
  }
  if (fuse_reply_buf(req, buf.data(), used) != 0) {
    for (fuse_ino_t i : linked) nodes_.Forget(i, 1);
  }
}

void WorkspaceFs::ReadDirCommon(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                                fuse_file_info*, bool plus) noexcept {
  WorkspaceFs* fs = From(req);
  if (off < 0) return (void)fuse_reply_err(req, EINVAL);
  const auto index = static_cast<size_t>(static_cast<uint64_t>(off) & kDirIndexMask);
  if (off != 0) {
    uint64_t id = static_cast<uint64_t>(off) >> kDirIndexBits;
    if (auto entries = fs->Snapshot(id)) {
      return fs->ServeDir(req, ino, id, *entries, size, index, plus);
    }
  }
  // From the start (opendir, rewinddir), or on from a listing no longer
  // kept: the current listing.
  auto path = fs->nodes_.PathOf(ino);
  if (!path) return (void)fuse_reply_buf(req, nullptr, 0);  // removed: no entries, as locally
  fs->ListWhole(*path, [fs, req, ino, size, index, plus](int err,
                                                         std::shared_ptr<const Entries> e) {
    if (err != 0) return (void)fuse_reply_err(req, err);
    uint64_t id = fs->KeepSnapshot(e);
    fs->ServeDir(req, ino, id, *e, size, index, plus);
  });
}

void WorkspaceFs::ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                          fuse_file_info* fi) noexcept {
  ReadDirCommon(req, ino, size, off, fi, false);
}

void WorkspaceFs::ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                              fuse_file_info* fi) noexcept {
  ReadDirCommon(req, ino, size, off, fi, true);
}

void WorkspaceFs::ReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info*) noexcept {
  fuse_reply_err(req, 0);
}

void WorkspaceFs::FsyncDir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info*) noexcept {
  WorkspaceFs* fs = From(req);
  auto path = fs->nodes_.PathOf(ino);
  if (!path) return (void)fuse_reply_err(req, 0);  // removed: nothing left to make durable
  // No remote handle is kept for a directory: one just for the fsync.
  fs->Call(req, proto::FsOpendirRequest{*path}, [fs, req, datasync](proto::FsOpendirReply o) {
    fs->CallOr(
        proto::FsFsyncRequest{o.fh, datasync != 0},
        [fs, req, fh = o.fh](proto::FsEmptyReply) {
          fs->ReleaseRemoteDir(fh);
          fuse_reply_err(req, 0);
        },
        [fs, req, fh = o.fh](int err) {
          fs->ReleaseRemoteDir(fh);
          fuse_reply_err(req, err);
        });
  });
}

void WorkspaceFs::StatFs(fuse_req_t req, fuse_ino_t ino) noexcept {
  WorkspaceFs* fs = From(req);
  auto path = fs->nodes_.PathOf(ino);
  if (!path) path = fs->o_.remote_root;
  fs->Call(req, proto::FsStatfsRequest{std::move(*path)}, [req](proto::FsStatfsReply r) {
    struct statvfs v {};
    v.f_bsize = r.bsize;
    v.f_frsize = r.frsize;
    v.f_blocks = r.blocks;
    v.f_bfree = r.bfree;
    v.f_bavail = r.bavail;
    v.f_files = r.files;
    v.f_ffree = r.ffree;
    v.f_favail = r.favail;
    v.f_fsid = r.fsid;
    v.f_flag = r.flag;
    v.f_namemax = r.namemax;
    fuse_reply_statfs(req, &v);
  });
}

bool WorkspaceFs::Passes(const char* xattr_name) const {
  return o_.xattrs == XattrNamespaces::kAll || std::string_view(xattr_name).starts_with("user.");
}

std::string UserXattrNames(std::string_view names) {
  std::string kept;
  while (!names.empty()) {
    size_t end = names.find('\0');
    std::string_view name = names.substr(0, end);
    if (name.starts_with("user.")) kept.append(name).push_back('\0');
    if (end == std::string_view::npos) break;
    names.remove_prefix(end + 1);
  }
  return kept;
}

void WorkspaceFs::SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value,
                           size_t size, int flags) noexcept {
  WorkspaceFs* fs = From(req);
  if (!fs->Passes(name)) return (void)fuse_reply_err(req, EOPNOTSUPP);
  auto path = fs->nodes_.PathOf(ino);
  if (!path) return (void)fuse_reply_err(req, ESTALE);
  if (size > proto::kFsMaxXattrSize) return (void)fuse_reply_err(req, E2BIG);
  proto::FsSetxattrRequest r{std::move(*path), name, std::string(value, size),
                             proto::XattrFlagsFromHost(flags)};
  fs->nodes_.SetNoXattrs(ino, false);
  fs->Call(req, std::move(r), [fs, req, ino](proto::FsEmptyReply) {
    fs->NodeChanged(ino);  // an ACL changes the mode too
    fuse_reply_err(req, 0);
  });
}

void WorkspaceFs::GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) noexcept {
  WorkspaceFs* fs = From(req);
  if (!fs->Passes(name)) return (void)fuse_reply_err(req, EOPNOTSUPP);
  // With every namespace passed, `ls -l` asks two names per file and the
  // kernel asks security.capability before every write: for a file known to
  // have none, no round trip.
  if (fs->nodes_.NoXattrs(ino)) return (void)fuse_reply_err(req, ENODATA);
  auto path = fs->nodes_.PathOf(ino);
  if (!path) return (void)fuse_reply_err(req, ESTALE);
  proto::FsGetxattrRequest r{std::move(*path), name,
                             static_cast<uint32_t>(std::min<size_t>(size, proto::kFsMaxXattrSize))};
  fs->Call(req, std::move(r), [req, size](proto::FsXattrReply x) {
    if (size == 0) return (void)fuse_reply_xattr(req, static_cast<size_t>(x.size));
    if (x.data.size() > size) return (void)fuse_reply_err(req, ERANGE);
    fuse_reply_buf(req, x.data.data(), x.data.size());
  });
}

void WorkspaceFs::ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) noexcept {
  WorkspaceFs* fs = From(req);
  if (fs->nodes_.NoXattrs(ino)) {
    if (size == 0) return (void)fuse_reply_xattr(req, 0);
    return (void)fuse_reply_buf(req, nullptr, 0);
  }
  auto path = fs->nodes_.PathOf(ino);
  if (!path) return (void)fuse_reply_err(req, ESTALE);
  const bool user_only = fs->o_.xattrs == XattrNamespaces::kUser;
  // Filtering needs the names even for a size query.
  const size_t asked = user_only ? proto::kFsMaxXattrSize : size;
  proto::FsListxattrRequest r{std::move(*path),
                              static_cast<uint32_t>(std::min<size_t>(asked, proto::kFsMaxXattrSize))};
  fs->Call(req, std::move(r), [req, size, user_only](proto::FsXattrReply x) {
    if (user_only) {
      x.data = UserXattrNames(x.data);
      x.size = x.data.size();
    }
    if (size == 0) return (void)fuse_reply_xattr(req, static_cast<size_t>(x.size));
    if (x.data.size() > size) return (void)fuse_reply_err(req, ERANGE);
    fuse_reply_buf(req, x.data.data(), x.data.size());
  });
}

void WorkspaceFs::RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) noexcept {
  WorkspaceFs* fs = From(req);
  if (!fs->Passes(name)) return (void)fuse_reply_err(req, EOPNOTSUPP);
  auto path = fs->nodes_.PathOf(ino);
  if (!path) return (void)fuse_reply_err(req, ESTALE);
  fs->Call(req, proto::FsRemovexattrRequest{std::move(*path), name},
           [fs, req, ino](proto::FsEmptyReply) {
             fs->NodeChanged(ino);
             fuse_reply_err(req, 0);
           });
}

void WorkspaceFs::Access(fuse_req_t req, fuse_ino_t ino, int mask) noexcept {
  WorkspaceFs* fs = From(req);
  auto path = fs->nodes_.PathOf(ino);
  if (!path) return (void)fuse_reply_err(req, ESTALE);
  fs->Call(req, proto::FsAccessRequest{std::move(*path), proto::AccessMaskFromHost(mask)},
           [req](proto::FsEmptyReply) { fuse_reply_err(req, 0); });
}

void WorkspaceFs::Fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
                            off_t length, fuse_file_info* fi) noexcept {
  WorkspaceFs* fs = From(req);
  fs->DropReadAhead(ino);
  if (offset < 0 || length <= 0) return (void)fuse_reply_err(req, EINVAL);
  uint32_t wire = proto::FallocateModeFromHost(mode);
  if (proto::FallocateModeToHost(wire) != mode) return (void)fuse_reply_err(req, EOPNOTSUPP);
  fs->Call(req,
           proto::FsFallocateRequest{fi->fh, wire, static_cast<uint64_t>(offset),
                                     static_cast<uint64_t>(length)},
           [fs, req, ino](proto::FsEmptyReply) {
             fs->NodeChanged(ino);
             fs->ReplyWhenOthersKnow(ino, true, [req] { fuse_reply_err(req, 0); });
           });
}

const fuse_lowlevel_ops& WorkspaceFs::Ops() {
  static const fuse_lowlevel_ops ops = [] {
    fuse_lowlevel_ops o{};
    o.init = &WorkspaceFs::Init;
    o.lookup = &WorkspaceFs::Lookup;
    o.forget = &WorkspaceFs::Forget;
    o.forget_multi = &WorkspaceFs::ForgetMulti;
    o.getattr = &WorkspaceFs::GetAttr;
    o.setattr = &WorkspaceFs::SetAttr;
    o.readlink = &WorkspaceFs::ReadLink;
    o.mknod = &WorkspaceFs::MkNod;
    o.mkdir = &WorkspaceFs::MkDir;
    o.unlink = &WorkspaceFs::Unlink;
    o.rmdir = &WorkspaceFs::RmDir;
    o.symlink = &WorkspaceFs::Symlink;
    o.rename = &WorkspaceFs::Rename;
    o.link = &WorkspaceFs::Link;
    o.open = &WorkspaceFs::Open;
    o.create = &WorkspaceFs::Create;
    o.read = &WorkspaceFs::Read;
    o.write = &WorkspaceFs::Write;
    o.flush = &WorkspaceFs::Flush;
    o.release = &WorkspaceFs::Release;
    o.fsync = &WorkspaceFs::Fsync;
    o.opendir = &WorkspaceFs::OpenDir;
    o.readdir = &WorkspaceFs::ReadDir;
    o.readdirplus = &WorkspaceFs::ReadDirPlus;
    o.releasedir = &WorkspaceFs::ReleaseDir;
    o.fsyncdir = &WorkspaceFs::FsyncDir;
    o.statfs = &WorkspaceFs::StatFs;
    o.setxattr = &WorkspaceFs::SetXattr;
    o.getxattr = &WorkspaceFs::GetXattr;
    o.listxattr = &WorkspaceFs::ListXattr;
    o.removexattr = &WorkspaceFs::RemoveXattr;
    o.access = &WorkspaceFs::Access;
    o.fallocate = &WorkspaceFs::Fallocate;
    return o;
  }();
  return ops;
}

// --- Workspace ---------------------------------------------------------------

Result<std::unique_ptr<Workspace>> Workspace::Mount(WorkspaceOptions options) {
  if (options.backend == nullptr) return Error("workspace: no backend");
  if (options.remote_root.empty() || options.remote_root[0] != '/') {
    return Error("workspace: remote directory '" + options.remote_root + "' is not absolute");
  }
  std::unique_ptr<Workspace> w(new Workspace());
  w->fs_ = std::make_unique<WorkspaceFs>(std::move(options));
  const WorkspaceOptions& o = w->fs_->options();
  SessionOptions so;
  so.mountpoint = o.mountpoint;
  // The option string is comma separated: the name shown in mount(8) must
  // not carry one.
  std::string fsname = "mproxy:" + o.remote_root;
  std::replace_if(fsname.begin(), fsname.end(), [](char c) { return c == ',' || c == '\\'; }, '_');
  // No default_permissions: the remote host decides who may do what (as the
  // agent's user), and the kernel needs no fresh attributes of a directory
  // before each create in it.
  so.mount_options = {"nosuid", "nodev", "fsname=" + fsname,
                      "subtype=mproxy"};
  so.threads = o.threads;
  // The remote kernel clears set-id bits itself when the agent writes,
  // truncates or chowns (and SetAttr turns what the kernel then leaves to
  // us into a remote chown(-1, -1)): no GETATTR before every chown.
  so.handle_killpriv = true;
  so.logger = o.logger;
  auto session = FuseSession::Start(std::move(so), WorkspaceFs::Ops(), w->fs_.get());
  if (!session) return session.error().Wrap("workspace " + o.remote_root);
  w->session_ = std::move(*session);
  w->fs_->set_session(w->session_.get());
  return w;
}

Workspace::~Workspace() {
  if (fs_) fs_->set_session(nullptr);
  session_.reset();
}

void Workspace::Revalidate(std::function<void()> done) { fs_->Revalidate(std::move(done)); }

const std::string& Workspace::mountpoint() const { return fs_->options().mountpoint; }
const std::string& Workspace::remote_root() const { return fs_->options().remote_root; }
int Workspace::fuse_fd() const { return session_->fd(); }
bool Workspace::ServeReady(unsigned max_requests) { return session_->ServeReady(max_requests); }

}  // namespace mproxy::fuse
