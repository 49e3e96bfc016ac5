// Hello construction and version negotiation.
#include "proto/hello.h"

#include <sys/utsname.h>

#include <algorithm>

namespace mproxy::proto {

Hello MakeHello(std::string program_version, std::vector<std::string> capabilities,
                uint32_t window) {
  Hello h;
  h.window = window;
  h.versions = {kProtocolVersion};
  h.program_version = std::move(program_version);
  struct utsname u {};
  if (uname(&u) == 0) {
    h.os = u.sysname;
    h.arch = u.machine;
  }
  h.capabilities = std::move(capabilities);
  return h;
}

std::string FormatVersions(const std::vector<uint32_t>& versions) {
  if (versions.empty()) return "none";
  std::string s;
  for (uint32_t v : versions) {
    if (!s.empty()) s += ", ";
    s += std::to_string(v);
  }
  return s;
}

Result<uint32_t> NegotiateVersion(const Hello& mine, const Hello& theirs) {
  if (theirs.magic != kMagic) {
    return Error("peer is not an mproxy endpoint (magic '" + theirs.magic.substr(0, 32) +
                 "', expected '" + kMagic + "')");
  }
  uint32_t best = 0;
  bool found = false;
  for (uint32_t v : mine.versions) {
    if (std::find(theirs.versions.begin(), theirs.versions.end(), v) != theirs.versions.end() &&
        (!found || v > best)) {
      best = v;
      found = true;
    }
  }
  if (!found) {
    return Error("no common protocol version: this side speaks " +
                 FormatVersions(mine.versions) + ", the peer (" +
                 (theirs.program_version.empty() ? std::string("unknown program")
                                                  : "mproxy " + theirs.program_version.substr(0, 64)) +
                 ") speaks " + FormatVersions(theirs.versions));
  }
  return best;
}

}  // namespace mproxy::proto
