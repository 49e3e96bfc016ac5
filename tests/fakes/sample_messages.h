// One fully populated instance of every message type and file operation, for
// round-trip tests and for the fuzz seed corpus.
#pragma once

#include <vector>

#include "proto/fs.h"
#include "proto/messages.h"

namespace mproxy::testing {

// Every message type, then one FsRequest per file operation and one FsReply
// per reply shape (built from the two lists below).
std::vector<proto::Message> SampleMessages();

// One request per file operation, every field set to a non-default value.
std::vector<proto::FsOpRequest> SampleFsRequests();
// One reply of each shape, every field set.
std::vector<proto::FsOpReply> SampleFsReplies();

}  // namespace mproxy::testing
