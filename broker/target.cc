// ParseTarget.
#include "broker/target.h"

#include <cctype>

namespace mproxy::broker {
namespace {

Result<int> ParsePort(const std::string& s, const std::string& spec) {
  if (s.empty() || s.size() > 5) return Error("bad port in '" + spec + "'");
  int port = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return Error("bad port in '" + spec + "'");
    port = port * 10 + (c - '0');
  }
  if (port < 1 || port > 65535) return Error("port out of range in '" + spec + "'");
  return port;
}

}  // namespace

Result<Target> ParseTarget(const std::string& spec) {
  std::string rest = spec;
  bool url = false;
  if (rest.rfind("ssh://", 0) == 0) {
    rest = rest.substr(6);
    url = true;
    if (!rest.empty() && rest.back() == '/') rest.pop_back();
  }
  Target t;
  size_t at = rest.rfind('@');
  if (at != std::string::npos) {
    t.user = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (t.user.empty()) return Error("empty user name in '" + spec + "'");
  }
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string::npos) return Error("unbalanced '[' in '" + spec + "'");
    t.host = rest.substr(1, close - 1);
    std::string after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Error("unexpected text after ']' in '" + spec + "'");
      auto p = ParsePort(after.substr(1), spec);
      if (!p) return p.error();
      t.port = *p;
    }
  } else {
    size_t colon = rest.find(':');
    // More than one colon without brackets: a bare IPv6 address, no port.
    if (colon != std::string::npos && rest.find(':', colon + 1) == std::string::npos) {
      auto p = ParsePort(rest.substr(colon + 1), spec);
      if (!p) return p.error();
      t.port = *p;
      t.host = rest.substr(0, colon);
    } else {
      t.host = rest;
    }
  }
  if (t.host.empty()) return Error("no host in '" + spec + "'");
  if (!url && t.host[0] == '-') return Error("'" + spec + "' is not a host name");
  for (char c : t.host) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == '/') {
      return Error("'" + spec + "' is not a host name");
    }
  }
  return t;
}

}  // namespace mproxy::broker
