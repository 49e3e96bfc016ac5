// Zero-install agent deployment. The agent lives remotely at a
// content-addressed path, ~/.cache/mproxy/agent/<sha256>/mproxy-agent (see
// packaging/agent/README.md). A session first checks for it; only when it is
// missing does it check the remote OS and architecture and upload the bundle
// over the same transport, where install.sh verifies and renames it into
// place (safe against concurrent deployments and running agents).
#pragma once

#include <string>

#include "broker/transport.h"
#include "common/result.h"

namespace mproxy::broker {

// A bundle built next to this mproxy (build tree or install).
struct AgentBundle {
  std::string dir;       // holds bundle.tar.gz, bundle.sha256, install.sh, tree/
  std::string hash;      // 64 hex digits
  std::string os = "Linux";
  std::string arch;      // from tree/BUNDLE, e.g. "x86_64"
};

// Finds the bundle: $MPROXY_AGENT_BUNDLE, else next to the executable.
Result<AgentBundle> FindAgentBundle();

// The remote command that starts the deployed agent.
std::string AgentCommand(const AgentBundle& bundle);

struct DeployReport {
  bool uploaded = false;
  size_t bytes = 0;
};

// Makes sure the bundle is installed on the other side of `transport`.
// `progress` (may be null) gets one line to show before an upload starts.
Result<DeployReport> EnsureAgent(Transport& transport, const AgentBundle& bundle,
                                 const std::function<void(const std::string&)>& progress);

}  // namespace mproxy::broker
