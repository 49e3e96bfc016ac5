// Transports that start a local process: the agent as a plain child (for
// tests and `--transport local`), or a command prefix that reaches another
// machine or container (`docker exec -i NAME`, `kubectl exec -i POD --`).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "broker/transport.h"

namespace mproxy::broker {

// Runs every command as `prefix... sh -c COMMAND` (no prefix: a local
// `/bin/sh -c COMMAND`). Thread-safe: it holds no mutable state.
class ProcessTransport : public Transport {
 public:
  explicit ProcessTransport(std::vector<std::string> prefix) : prefix_(std::move(prefix)) {}

  std::string Describe() const override;
  Result<CommandResult> Run(const std::string& command, std::string_view input) override;
  Result<std::unique_ptr<ByteStream>> Open(const std::string& command) override;

 private:
  std::vector<std::string> Argv(const std::string& command) const;
  std::vector<std::string> prefix_;
};

}  // namespace mproxy::broker
