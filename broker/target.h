// Parsing the host argument: [user@]host[:port], [user@][v6addr]:port and
// ssh://[user@]host[:port].
#pragma once

#include <string>

#include "common/result.h"

namespace mproxy::broker {

struct Target {
  std::string user;  // empty: from ssh config or the local user
  std::string host;
  int port = 0;      // 0: from ssh config or 22
};

Result<Target> ParseTarget(const std::string& spec);

}  // namespace mproxy::broker
