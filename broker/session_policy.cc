// Session rules for shim requests (see session_policy.h).
#include "broker/session_policy.h"

#include <map>

namespace mproxy::broker {
namespace {

std::string_view NameOf(std::string_view entry) {
  size_t eq = entry.find('=');
  return eq == std::string_view::npos ? std::string_view() : entry.substr(0, eq);
}

// name -> value, first occurrence wins; malformed entries skipped.
std::map<std::string_view, std::string_view> EnvMap(const std::vector<std::string>& env) {
  std::map<std::string_view, std::string_view> m;
  for (const std::string& e : env) {
    std::string_view name = NameOf(e);
    if (name.empty()) continue;
    m.emplace(name, std::string_view(e).substr(name.size() + 1));
  }
  return m;
}

std::string_view Basename(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string_view DirnameOf(std::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return {};
  return slash == 0 ? std::string_view("/") : path.substr(0, slash);
}

std::string_view TrimSlashes(std::string_view p) {
  while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
  return p;
}


std::vector<std::string_view> Words(std::string_view s) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    if (i > start) words.push_back(s.substr(start, i - start));
  }
  return words;
}

}  // namespace

bool NeverForwarded(std::string_view name) {
  return name.substr(0, 7) == "MPROXY_" || name == "LD_PRELOAD" || name == "LD_LIBRARY_PATH";
}

std::string StripPathElement(std::string_view path, std::string_view stub_dir) {
  std::string_view stub = TrimSlashes(stub_dir);
  std::string out;
  bool first = true;
  size_t start = 0;
  while (true) {
    size_t colon = path.find(':', start);
    std::string_view elem = path.substr(start, colon == std::string_view::npos ? colon : colon - start);
    if (stub.empty() || elem.empty() || TrimSlashes(elem) != stub) {
      if (!first) out += ':';
      out += elem;
      first = false;
    }
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  return out;
}

std::vector<std::string> ForwardedEnv(const std::vector<std::string>& launch_env,
                                      const std::vector<std::string>& shim_env,
                                      const EnvPolicy& policy) {
  auto launch = EnvMap(launch_env);
  auto now = EnvMap(shim_env);
  auto excluded = [&](std::string_view name) {
    return NeverForwarded(name) || EnvNameMatches(policy.remove, name);
  };
  std::vector<std::string> out;
  for (const auto& [name, value] : now) {
    if (excluded(name)) continue;
    auto before = launch.find(name);
    if (name == "PATH") {
      std::string stripped = StripPathElement(value, policy.stub_dir);
      if (before != launch.end() && StripPathElement(before->second, policy.stub_dir) == stripped) {
        continue;
      }
      out.push_back("PATH=" + stripped);
      continue;
    }
    bool changed = before == launch.end() || before->second != value;
    if (changed || EnvNameMatches(policy.keep, name)) {
      out.push_back(std::string(name) + "=" + std::string(value));
    }
  }
  for (const auto& [name, value] : launch) {
    if (!now.count(name) && !excluded(name)) out.emplace_back(name);
  }
  return out;
}

bool IsUnder(std::string_view path, std::string_view prefix) {
  if (path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || prefix == "/" || path[prefix.size()] == '/';
}

std::string ResolveRemoteHome(std::string_view remote, std::string_view remote_home) {
  if (remote_home.empty() || !(remote == "~" || remote.substr(0, 2) == "~/")) {
    return std::string(remote);
  }
  std::string home(TrimSlashes(remote_home));
  if (home.empty()) home = "/";
  if (remote == "~") return home;
  return (home == "/" ? std::string() : home) + std::string(remote.substr(1));
}

std::string MapToRemote(const std::vector<Mount>& mounts, std::string_view path,
                        std::string_view remote_home) {
  const Mount* best = nullptr;
  for (const Mount& m : mounts) {
    if (!IsUnder(path, m.local)) continue;
    if (best == nullptr || m.local.size() > best->local.size()) best = &m;
  }
  if (best == nullptr) return std::string(path);
  std::string remote = ResolveRemoteHome(best->remote, remote_home);
  std::string_view rest = path.substr(best->local.size());
  if (rest.empty()) return remote;
  if (remote == "/") return std::string(rest);
  return remote + std::string(rest);
}

std::string CommandName(std::string_view exe, std::string_view argv0, std::string_view stub_dir) {
  if (!exe.empty()) {
    std::string_view dir = DirnameOf(exe);
    std::string_view base = Basename(exe);
    if (!stub_dir.empty() && TrimSlashes(dir) == TrimSlashes(stub_dir) && !base.empty()) {
      return std::string(base);
    }
    if (!base.empty()) return std::string(base);
  }
  return std::string(Basename(argv0));
}

std::vector<std::string> EntrypointLocalNames(std::string_view program,
                                              std::string_view first_line) {
  std::vector<std::string> names;
  auto add = [&names](std::string_view n) {
    if (n.empty()) return;
    for (const auto& have : names) {
      if (have == n) return;
    }
    names.emplace_back(n);
  };
  add(Basename(program));
  if (first_line.substr(0, 2) != "#!") return names;
  std::string_view line = first_line.substr(2);
  if (size_t nl = line.find('\n'); nl != std::string_view::npos) line = line.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  auto words = Words(line);
  if (words.empty()) return names;
  std::string_view interpreter = Basename(words[0]);
  add(interpreter);
  if (interpreter == "env") {
    // #!/usr/bin/env [-S] [-i] [-u NAME] [NAME=value]... PROGRAM
    for (size_t i = 1; i < words.size(); ++i) {
      std::string_view w = words[i];
      if (w == "-u" || w == "--unset" || w == "-C" || w == "--chdir") {
        ++i;
        continue;
      }
      if (w.front() == '-' || w.find('=') != std::string_view::npos) continue;
      add(Basename(w));
      break;
    }
  }
  return names;
}

}  // namespace mproxy::broker
