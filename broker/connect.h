// Reaching the agent: picking the transport from the options, and finding or
// deploying the agent on the other side. Blocking: runs before the loop.
#pragma once

#include <memory>
#include <string>

#include "broker/cli.h"
#include "broker/transport.h"

namespace mproxy::broker {

struct Connection {
  std::unique_ptr<Transport> transport;
  std::unique_ptr<ByteStream> agent_stream;
  std::string label;  // host name for messages
};

// Connects, makes sure the agent is there, and starts it.
Result<Connection> Connect(const ConnectOptions& options);

// A program installed with mproxy (`name`): $`env_var` when set, else next
// to this binary, in ../`build_dir` (the build tree) or ../lib/mproxy. The
// error suggests setting `env_var`, followed by `or_else` (" or pass --x").
Result<std::string> FindCompanion(const std::string& name, const char* env_var,
                                  const std::string& build_dir, const std::string& or_else = "");

// The mproxy-agent next to this mproxy binary (build tree or install), or
// $MPROXY_AGENT_PATH.
Result<std::string> FindLocalAgent();

// Quotes `s` for a POSIX shell.
std::string ShellQuote(const std::string& s);

}  // namespace mproxy::broker
