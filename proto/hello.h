// The Hello handshake: building our Hello and choosing the protocol version
// both sides speak.
#pragma once

#include <string>

#include "common/result.h"
#include "proto/messages.h"

namespace mproxy::proto {

// A Hello for this build: magic, kProtocolVersion, the given program version,
// this machine's OS and architecture (from uname), and `capabilities`.
Hello MakeHello(std::string program_version, std::vector<std::string> capabilities,
                uint32_t window = 0);

// The highest version both Hellos list, or an error that names the versions
// each side speaks (and a wrong magic string).
Result<uint32_t> NegotiateVersion(const Hello& mine, const Hello& theirs);

// "1, 2" for diagnostics.
std::string FormatVersions(const std::vector<uint32_t>& versions);

}  // namespace mproxy::proto
