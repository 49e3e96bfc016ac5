// FsOps: the blocking half of the file operations. One typed request in, its
// FsReply out, by plain syscalls on the agent's host.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "agent/fs_handles.h"
#include "proto/fs.h"
#include "proto/messages.h"

namespace mproxy::agent {

// Owned by FsServer. Run() is called on thread-pool workers, any number at
// once: the only shared state is the (thread-safe) handle table.
class FsOps {
 public:
  // `umask` is the agent's own file-creation mask. Modes in requests are
  // final (the peer's side applied its umask already), so bits the agent's
  // umask strips from a new file are put back.
  FsOps(FsHandles* handles, mode_t umask) : handles_(handles), umask_(umask) {}

  proto::FsReply Run(uint64_t id, const proto::FsOpRequest& req) const;

 private:
  template <typename Reply>
  using R = Result<Reply>;

  R<proto::FsAttrReply> Do(const proto::FsGetattrRequest& r) const;
  R<proto::FsOpendirReply> Do(const proto::FsOpendirRequest& r) const;
  R<proto::FsReaddirReply> Do(const proto::FsReaddirRequest& r) const;
  R<proto::FsEmptyReply> Do(const proto::FsReleasedirRequest& r) const;
  R<proto::FsReaddirReply> Do(const proto::FsListdirRequest& r) const;
  R<proto::FsOpenReply> Do(const proto::FsOpenRequest& r) const;
  R<proto::FsReadReply> Do(const proto::FsReadRequest& r) const;
  R<proto::FsWriteReply> Do(const proto::FsWriteRequest& r) const;
  R<proto::FsEmptyReply> Do(const proto::FsFsyncRequest& r) const;
  R<proto::FsEmptyReply> Do(const proto::FsReleaseRequest& r) const;
  R<proto::FsAttrReply> Do(const proto::FsMkdirRequest& r) const;
  R<proto::FsAttrReply> Do(const proto::FsMknodRequest& r) const;
  R<proto::FsEmptyReply> Do(const proto::FsUnlinkRequest& r) const;
  R<proto::FsEmptyReply> Do(const proto::FsRmdirRequest& r) const;
  R<proto::FsEmptyReply> Do(const proto::FsRenameRequest& r) const;
  R<proto::FsAttrReply> Do(const proto::FsSymlinkRequest& r) const;
  R<proto::FsReadlinkReply> Do(const proto::FsReadlinkRequest& r) const;
  R<proto::FsAttrReply> Do(const proto::FsLinkRequest& r) const;
  R<proto::FsAttrReply> Do(const proto::FsSetattrRequest& r) const;
  R<proto::FsStatfsReply> Do(const proto::FsStatfsRequest& r) const;
  R<proto::FsEmptyReply> Do(const proto::FsAccessRequest& r) const;
  R<proto::FsXattrReply> Do(const proto::FsGetxattrRequest& r) const;
  R<proto::FsEmptyReply> Do(const proto::FsSetxattrRequest& r) const;
  R<proto::FsXattrReply> Do(const proto::FsListxattrRequest& r) const;
  R<proto::FsEmptyReply> Do(const proto::FsRemovexattrRequest& r) const;
  R<proto::FsEmptyReply> Do(const proto::FsFallocateRequest& r) const;

  // The open handle `fh` of `kind` (nullopt: either), or EBADF.
  Result<std::shared_ptr<FsHandle>> Handle(uint64_t fh, std::optional<FsHandle::Kind> kind) const;
  // Mode bits `wanted` has and `st_mode` lacks because of the agent's umask.
  mode_t Stripped(uint32_t wanted, mode_t st_mode) const;
  // lstat(path) after creating it with `mode`, putting back what the umask
  // took away.
  R<proto::FsAttrReply> CreatedAttr(const std::string& path, uint32_t mode) const;

  FsHandles* handles_;
  const mode_t umask_;
};

}  // namespace mproxy::agent
