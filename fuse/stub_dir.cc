// StubDir and StubFs, the low-level FUSE operations behind it. See
// stub_dir.h for the inode scheme and the cache timeouts.
#include "fuse/stub_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <optional>
#include <utility>

#include <spdlog/spdlog.h>

#include "common/io.h"
#include "common/unique_fd.h"
#include "fuse/session.h"

namespace mproxy::fuse {
namespace {

constexpr fuse_ino_t kRootIno = FUSE_ROOT_ID;
constexpr fuse_ino_t kStubIno = 2;

using Names = std::vector<std::string>;
using NamesPtr = std::shared_ptr<const Names>;

bool ValidName(const std::string& n) {
  return !n.empty() && n != "." && n != ".." &&
         n.find('/') == std::string::npos && n.find('\0') == std::string::npos;
}

// An open directory: the names as they were at opendir, so readdir offsets
// stay stable while SetNames swaps the set. Freed in releasedir, or with the
// StubFs for a directory still open when the mount goes away.
struct DirHandle {
  NamesPtr names;
};

}  // namespace

// The filesystem state every callback sees (the session's userdata). Lives
// longer than the FuseSession that calls into it.
class StubFs {
 public:
  ~StubFs();
  StubFs(const StubFs&) = delete;
  StubFs& operator=(const StubFs&) = delete;
  void ForgetDir(DirHandle* handle);
  StubFs(StubDirOptions options, std::string shim_bytes, time_t shim_mtime)
      : options_(std::move(options)),
        log_(options_.logger ? options_.logger : spdlog::default_logger()),
        shim_(std::move(shim_bytes)),
        shim_mtime_(shim_mtime),
        mount_time_(time(nullptr)),
        uid_(geteuid()),
        gid_(getegid()),
        names_(std::make_shared<const Names>()) {}

  static const fuse_lowlevel_ops& Ops();

  void set_session(FuseSession* s) { session_.store(s); }
  void set_stopping() { stopping_.store(true); }
  const StubDirOptions& options() const { return options_; }

  // Swaps in a new set and queues invalidation of the removed names.
  void SetNames(Names names);
  NamesPtr Snapshot() const {
    std::lock_guard lock(names_mu_);
    return names_;
  }

 private:
  static StubFs* From(fuse_req_t req) {
    return static_cast<StubFs*>(fuse_req_userdata(req));
  }
  static bool Contains(const Names& names, const char* name) {
    return std::binary_search(names.begin(), names.end(), std::string(name));
  }

  double TimeoutSeconds() const {
    return std::chrono::duration<double>(options_.entry_timeout).count();
  }
  struct stat StubAttr() const;
  struct stat RootAttr() const;
  fuse_entry_param StubEntry() const;
  bool RefreshAndContains(const char* name);

  static void Lookup(fuse_req_t req, fuse_ino_t parent,
                     const char* name) noexcept;
  static void Forget(fuse_req_t req, fuse_ino_t ino,
                     uint64_t nlookup) noexcept;
  static void GetAttr(fuse_req_t req, fuse_ino_t ino,
                      fuse_file_info* fi) noexcept;
  static void Init(void* userdata, fuse_conn_info* conn) noexcept;
  static void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept;
  static void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   fuse_file_info* fi) noexcept;
  static void Release(fuse_req_t req, fuse_ino_t ino,
                      fuse_file_info* fi) noexcept;
  static void OpenDir(fuse_req_t req, fuse_ino_t ino,
                      fuse_file_info* fi) noexcept;
  static void ReadDirCommon(fuse_req_t req, fuse_ino_t ino, size_t size,
                            off_t off, fuse_file_info* fi, bool plus) noexcept;
  static void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                      fuse_file_info* fi) noexcept {
    ReadDirCommon(req, ino, size, off, fi, false);
  }
  static void ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size,
                          off_t off, fuse_file_info* fi) noexcept {
    ReadDirCommon(req, ino, size, off, fi, true);
  }
  static void ReleaseDir(fuse_req_t req, fuse_ino_t ino,
                         fuse_file_info* fi) noexcept;

  const StubDirOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  const std::string shim_;
  const time_t shim_mtime_;
  const time_t mount_time_;
  const uid_t uid_;
  const gid_t gid_;
  std::atomic<FuseSession*> session_{nullptr};
  std::atomic<bool> stopping_{false};
  // Directories opened and not yet released; guards nothing else. Leaf lock.
  std::mutex dirs_mu_;
  std::set<DirHandle*> open_dirs_;
  // The kernel takes ENOSYS from open as "opens need no message" (Linux
  // 3.14+ with FUSE 7.23): every exec of a stub then costs no open and no
  // release round trip, and the page cache is kept (FOPEN_KEEP_CACHE is the
  // kernel's default for such opens). Set once in Init.
  std::atomic<bool> zero_message_open_{false};

  // Lock order: refresh_mu_ before names_mu_.
  // refresh_mu_ serialises refreshes: a miss that arrives while one runs
  // waits for it and then answers from the new set. Guards last_refresh_.
  std::mutex refresh_mu_;
  std::optional<std::chrono::steady_clock::time_point> last_refresh_;
  // names_mu_ guards the pointer names_ only (the vector is immutable);
  // held for a pointer copy, never across a call out.
  mutable std::mutex names_mu_;
  NamesPtr names_;
};

void StubFs::SetNames(Names names) {
  Names valid;
  valid.reserve(names.size());
  for (auto& n : names) {
    if (ValidName(n)) {
      valid.push_back(std::move(n));
    } else {
      log_->warn("stub dir {}: ignoring command name '{}'",
                 options_.mountpoint, n);
    }
  }
  std::sort(valid.begin(), valid.end());
  valid.erase(std::unique(valid.begin(), valid.end()), valid.end());
  auto fresh = std::make_shared<const Names>(std::move(valid));

  NamesPtr old;
  {
    std::lock_guard lock(names_mu_);
    old = std::exchange(names_, fresh);
  }
  FuseSession* session = session_.load();
  if (session == nullptr) return;
  Names removed;
  std::set_difference(old->begin(), old->end(), fresh->begin(), fresh->end(),
                      std::back_inserter(removed));
  for (auto& n : removed) session->InvalidateEntry(kRootIno, std::move(n));
  if (std::max<size_t>(old->size(), 1) != std::max<size_t>(fresh->size(), 1)) {
    session->InvalidateAttributes(kStubIno);  // nlink changed
  }
}

struct stat StubFs::StubAttr() const {
  struct stat st {};
  st.st_ino = kStubIno;
  st.st_mode = S_IFREG | 0555;
  st.st_nlink = std::max<size_t>(Snapshot()->size(), 1);
  st.st_uid = uid_;
  st.st_gid = gid_;
  st.st_size = static_cast<off_t>(shim_.size());
  st.st_blksize = 4096;
  st.st_blocks = static_cast<blkcnt_t>((shim_.size() + 511) / 512);
  st.st_atim.tv_sec = st.st_mtim.tv_sec = st.st_ctim.tv_sec = shim_mtime_;
  return st;
}

struct stat StubFs::RootAttr() const {
  struct stat st {};
  st.st_ino = kRootIno;
  st.st_mode = S_IFDIR | 0555;
  st.st_nlink = 2;
  st.st_uid = uid_;
  st.st_gid = gid_;
  st.st_blksize = 4096;
  st.st_atim.tv_sec = st.st_mtim.tv_sec = st.st_ctim.tv_sec = mount_time_;
  return st;
}

fuse_entry_param StubFs::StubEntry() const {
  fuse_entry_param e{};
  e.ino = kStubIno;
  e.generation = 1;
  e.attr = StubAttr();
  e.attr_timeout = TimeoutSeconds();
  e.entry_timeout = TimeoutSeconds();
  return e;
}

bool StubFs::RefreshAndContains(const char* name) {
  if (!options_.refresh || stopping_.load()) return false;
  std::lock_guard lock(refresh_mu_);
  // A refresh that finished while we waited may already have the name.
  if (Contains(*Snapshot(), name)) return true;
  auto now = std::chrono::steady_clock::now();
  if (last_refresh_ && now - *last_refresh_ < options_.refresh_interval) {
    return false;
  }
  last_refresh_ = now;
  Result<Names> fresh = [&]() -> Result<Names> {
    try {
      return options_.refresh();
    } catch (const std::exception& e) {
      return Error(std::string("refresh threw: ") + e.what());
    }
  }();
  if (!fresh.ok()) {
    log_->warn("stub dir {}: re-enumerating commands after a miss for '{}': "
               "{}",
               options_.mountpoint, name, fresh.error().message());
    return false;
  }
  SetNames(std::move(fresh).value());
  return Contains(*Snapshot(), name);
}

void StubFs::Lookup(fuse_req_t req, fuse_ino_t parent,
                    const char* name) noexcept {
  StubFs* fs = From(req);
  if (parent != kRootIno) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  try {
    if (Contains(*fs->Snapshot(), name) || fs->RefreshAndContains(name)) {
      fuse_entry_param e = fs->StubEntry();
      fuse_reply_entry(req, &e);
      return;
    }
  } catch (const std::exception& e) {
    fs->log_->error("stub dir {}: lookup '{}': {}", fs->options_.mountpoint,
                    name, e.what());
    fuse_reply_err(req, EIO);
    return;
  }
  // A plain ENOENT is never cached by the kernel (a zero-timeout negative
  // dentry), so the next exec of a new command asks again.
  fuse_reply_err(req, ENOENT);
}

void StubFs::Forget(fuse_req_t req, fuse_ino_t, uint64_t) noexcept {
  // Both inodes live as long as the mount: nothing to release.
  fuse_reply_none(req);
}

void StubFs::GetAttr(fuse_req_t req, fuse_ino_t ino,
                     fuse_file_info*) noexcept {
  StubFs* fs = From(req);
  if (ino != kRootIno && ino != kStubIno) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  struct stat st = ino == kRootIno ? fs->RootAttr() : fs->StubAttr();
  fuse_reply_attr(req, &st, fs->TimeoutSeconds());
}

void StubFs::Init(void* userdata, fuse_conn_info* conn) noexcept {
  auto* fs = static_cast<StubFs*>(userdata);
  fs->zero_message_open_ = (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) != 0;
}

void StubFs::Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  if (ino == kStubIno && From(req)->zero_message_open_ &&
      (fi->flags & O_ACCMODE) == O_RDONLY) {
    fuse_reply_err(req, ENOSYS);
    return;
  }
  if (ino == kRootIno) {
    fuse_reply_err(req, EISDIR);
    return;
  }
  if (ino != kStubIno) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  // The ro mount already refuses these in the kernel; kept for clarity.
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC) != 0) {
    fuse_reply_err(req, EROFS);
    return;
  }
  // Without keep_cache the kernel drops the inode's pages on every open,
  // i.e. on every exec of every name.
  fi->keep_cache = 1;
  fuse_reply_open(req, fi);
}

void StubFs::Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                  fuse_file_info*) noexcept {
  StubFs* fs = From(req);
  if (ino != kStubIno) {
    fuse_reply_err(req, EISDIR);
    return;
  }
  const std::string& data = fs->shim_;
  if (off < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  size_t start = std::min(static_cast<size_t>(off), data.size());
  size_t len = std::min(size, data.size() - start);
  fuse_reply_buf(req, data.data() + start, len);
}

void StubFs::Release(fuse_req_t req, fuse_ino_t, fuse_file_info*) noexcept {
  fuse_reply_err(req, 0);
}

void StubFs::OpenDir(fuse_req_t req, fuse_ino_t ino,
                     fuse_file_info* fi) noexcept {
  StubFs* fs = From(req);
  if (ino != kRootIno) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  auto* handle = new (std::nothrow) DirHandle{fs->Snapshot()};
  if (handle == nullptr) {
    fuse_reply_err(req, ENOMEM);
    return;
  }
  {
    std::lock_guard lock(fs->dirs_mu_);
    fs->open_dirs_.insert(handle);
  }
  fi->fh = reinterpret_cast<uint64_t>(handle);
  if (fuse_reply_open(req, fi) != 0) fs->ForgetDir(handle);  // the opener went away
}

void StubFs::ReadDirCommon(fuse_req_t req, fuse_ino_t ino, size_t size,
                           off_t off, fuse_file_info* fi, bool plus) noexcept {
  StubFs* fs = From(req);
  if (ino != kRootIno) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  const auto* handle = reinterpret_cast<const DirHandle*>(fi->fh);
  const Names& names = *handle->names;
  std::string buf;
  try {
    buf.resize(size);
  } catch (const std::bad_alloc&) {
    fuse_reply_err(req, ENOMEM);
    return;
  }
  // Offsets: 0 ".", 1 "..", 2 + i names[i]; an entry's offset field is the
  // offset of the one after it.
  size_t used = 0;
  const size_t total = names.size() + 2;
  for (size_t i = off < 0 ? 0 : static_cast<size_t>(off); i < total; ++i) {
    const char* name = i == 0 ? "." : i == 1 ? ".." : names[i - 2].c_str();
    fuse_entry_param e{};
    if (i < 2) {
      // ino 0: the kernel neither links nor counts "." and "..".
      e.attr = fs->RootAttr();
    } else {
      e = fs->StubEntry();
    }
    size_t need;
    if (plus) {
      need = fuse_add_direntry_plus(req, buf.data() + used, size - used, name,
                                    &e, static_cast<off_t>(i + 1));
    } else {
      need = fuse_add_direntry(req, buf.data() + used, size - used, name,
                               &e.attr, static_cast<off_t>(i + 1));
    }
    if (need > size - used) break;
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void StubFs::ReleaseDir(fuse_req_t req, fuse_ino_t,
                        fuse_file_info* fi) noexcept {
  From(req)->ForgetDir(reinterpret_cast<DirHandle*>(fi->fh));
  fuse_reply_err(req, 0);
}

void StubFs::ForgetDir(DirHandle* handle) {
  {
    std::lock_guard lock(dirs_mu_);
    if (open_dirs_.erase(handle) == 0) return;
  }
  delete handle;
}

StubFs::~StubFs() {
  for (DirHandle* h : open_dirs_) delete h;
}

const fuse_lowlevel_ops& StubFs::Ops() {
  static const fuse_lowlevel_ops ops = [] {
    fuse_lowlevel_ops o{};
    o.lookup = &StubFs::Lookup;
    o.forget = &StubFs::Forget;
    o.getattr = &StubFs::GetAttr;
    o.init = &StubFs::Init;
    o.open = &StubFs::Open;
    o.read = &StubFs::Read;
    o.release = &StubFs::Release;
    o.opendir = &StubFs::OpenDir;
    o.readdir = &StubFs::ReadDir;
    o.readdirplus = &StubFs::ReadDirPlus;
    o.releasedir = &StubFs::ReleaseDir;
    return o;
  }();
  return ops;
}

Result<std::unique_ptr<StubDir>> StubDir::Mount(StubDirOptions options) {
  const std::string where = "stub dir " + options.mountpoint;
  UniqueFd shim_fd(open(options.shim_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!shim_fd) {
    return Error::FromErrno(where + ": shim " + options.shim_path, errno);
  }
  struct stat st {};
  if (fstat(shim_fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Error(where + ": shim " + options.shim_path +
                 " is not a regular file");
  }
  Result<std::string> bytes = ReadToEof(shim_fd.get());
  if (!bytes.ok()) {
    return bytes.error().Wrap(where + ": reading shim " + options.shim_path);
  }

  SessionOptions session_options;
  session_options.mountpoint = options.mountpoint;
  session_options.mount_options = {"ro", "default_permissions",
                                   "fsname=mproxy-stubs",
                                   "subtype=mproxy-stubs"};
  if (options.allow_other) session_options.mount_options.push_back("allow_other");
  session_options.logger = options.logger;

  Names initial = std::move(options.names);
  std::unique_ptr<StubDir> dir(new StubDir());
  dir->fs_ = std::make_unique<StubFs>(std::move(options),
                                      std::move(bytes).value(), st.st_mtime);
  dir->fs_->SetNames(std::move(initial));

  auto session = FuseSession::Start(std::move(session_options), StubFs::Ops(),
                                    dir->fs_.get());
  if (!session.ok()) return session.error().Wrap(where);
  dir->session_ = std::move(session).value();
  dir->fs_->set_session(dir->session_.get());
  return dir;
}

StubDir::~StubDir() {
  if (fs_) fs_->set_stopping();
  if (fs_) fs_->set_session(nullptr);
  session_.reset();  // unmount and join before fs_ goes away
}

void StubDir::SetNames(std::vector<std::string> names) {
  fs_->SetNames(std::move(names));
}

std::vector<std::string> StubDir::names() const { return *fs_->Snapshot(); }

const std::string& StubDir::mountpoint() const {
  return fs_->options().mountpoint;
}

std::string StubDir::PathOf(const std::string& name) const {
  return mountpoint() + "/" + name;
}

}  // namespace mproxy::fuse
