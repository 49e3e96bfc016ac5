// One fully populated instance of every message type, for round-trip tests
// and for the fuzz seed corpus.
#pragma once

#include <vector>

#include "proto/messages.h"

namespace mproxy::testing {

std::vector<proto::Message> SampleMessages();

}  // namespace mproxy::testing
