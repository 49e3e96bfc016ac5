// The Transport interface over one SshConnection: short commands on fresh
// channels, and the agent's stdin/stdout as a ByteStream on an exec channel.
#pragma once

#include <memory>
#include <string>

#include "broker/ssh_connection.h"
#include "broker/ssh_options.h"
#include "broker/transport.h"

namespace mproxy::broker {

// Owned by the broker's session. Thread-safe as Transport requires; the
// methods block (connect and commands), so call them off the loop thread.
class SshTransport : public Transport {
 public:
  // Connects and authenticates (blocking).
  static Result<std::unique_ptr<SshTransport>> Connect(SshOptions options);

  std::string Describe() const override;
  Result<CommandResult> Run(const std::string& command, std::string_view input) override;
  Result<std::unique_ptr<ByteStream>> Open(const std::string& command) override;

  SshConnection& connection() { return *connection_; }

 private:
  explicit SshTransport(std::unique_ptr<SshConnection> c) : connection_(std::move(c)) {}
  std::unique_ptr<SshConnection> connection_;
};

}  // namespace mproxy::broker
