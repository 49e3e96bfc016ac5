// One or more instances of every shim socket message, with binary bytes and
// non-default values, for round-trip tests and the fuzz seed corpus.
#pragma once

#include <vector>

#include "proto/shim_wire.h"

namespace mproxy::testing {

std::vector<proto::shim::Message> ShimSampleMessages();

}  // namespace mproxy::testing
