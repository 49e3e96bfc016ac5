// Builds the bwrap argv and the entrypoint's environment (see bwrap_command.h).
#include "ns/bwrap_command.h"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <set>

namespace mproxy::ns {
namespace {

// "/a//b/" and "/a/b" name the same place for ordering and duplicate checks.
std::string NormalizePath(std::string_view path) {
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t end = path.find('/', i);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(i, end - i);
    if (!part.empty() && part != ".") {
      out += '/';
      out += part;
    }
    i = end;
  }
  return out.empty() ? "/" : out;
}

size_t Depth(std::string_view path) {
  std::string n = NormalizePath(path);
  return n == "/" ? 0 : static_cast<size_t>(std::count(n.begin(), n.end(), '/'));
}

struct MountOp {
  const char* flag;
  const std::string* source;
  const std::string* dest;
};

bool IsSessionVariable(std::string_view name) {
  return name == kEnvSocket || name == kEnvStubDir || name == kEnvHost || name == kEnvSession;
}

}  // namespace

Status CheckNamespaceSpec(const NamespaceSpec& spec) {
  if (spec.program.empty()) return Error("namespace: no program to run");
  if (!spec.cwd.empty() && spec.cwd[0] != '/') {
    return Error("namespace: working directory '" + spec.cwd + "' is not absolute");
  }
  if (!spec.stub_dir.empty() && spec.stub_dir[0] != '/') {
    return Error("namespace: stub dir '" + spec.stub_dir + "' is not absolute");
  }
  if (!spec.stub_dir_source.empty() && spec.stub_dir_source[0] != '/') {
    return Error("namespace: stub dir source '" + spec.stub_dir_source + "' is not absolute");
  }
  if (!spec.stub_dir_source.empty() && spec.stub_dir.empty()) {
    return Error("namespace: stub dir source given without a stub dir");
  }
  std::set<std::string> dests;
  if (!spec.stub_dir_source.empty()) dests.insert(NormalizePath(spec.stub_dir));
  for (const BindMount& m : spec.mounts) {
    if (m.source.empty() || m.source[0] != '/' || m.dest.empty() || m.dest[0] != '/') {
      return Error("namespace: mount '" + m.source + "' on '" + m.dest +
                   "': both paths must be absolute");
    }
    std::string dest = NormalizePath(m.dest);
    if (dest == "/") return Error("namespace: cannot mount '" + m.source + "' over /");
    if (!dests.insert(dest).second) {
      return Error("namespace: two mounts on '" + dest + "'");
    }
  }
  return Ok();
}

std::vector<std::string> BuildBwrapArgv(const NamespaceSpec& spec) {
  assert(!spec.program.empty());
  std::vector<std::string> argv = {spec.bwrap_path, "--die-with-parent"};
  if (spec.info_fd >= 0) argv.insert(argv.end(), {"--info-fd", std::to_string(spec.info_fd)});
  if (spec.unshare_user) argv.push_back("--unshare-user");
  // --dev-bind, not --bind: --bind mounts nodev, so even /dev/null and the
  // user's terminal (/dev/pts/N) would fail to open. The recursive bind also
  // brings the host's /proc (same pid namespace: ps and kill see the host),
  // /tmp, /run and every FUSE mount already set up, exactly as outside.
  argv.insert(argv.end(), {"--dev-bind", "/", "/"});

  std::vector<MountOp> ops;
  if (!spec.stub_dir_source.empty() && spec.stub_dir_source != spec.stub_dir) {
    ops.push_back({"--ro-bind", &spec.stub_dir_source, &spec.stub_dir});
  }
  for (const BindMount& m : spec.mounts) ops.push_back({"--bind", &m.source, &m.dest});
  // Parents before children: bwrap mounts in argv order, and a later mount
  // on a parent would hide an earlier one beneath it.
  std::stable_sort(ops.begin(), ops.end(), [](const MountOp& a, const MountOp& b) {
    return Depth(*a.dest) < Depth(*b.dest);
  });
  for (const MountOp& op : ops) argv.insert(argv.end(), {op.flag, *op.source, *op.dest});

  if (!spec.cwd.empty()) argv.insert(argv.end(), {"--chdir", spec.cwd});
  argv.push_back("--");  // a program named "--foo" is not a bwrap option
  argv.insert(argv.end(), spec.program.begin(), spec.program.end());
  return argv;
}

std::optional<int> ParseBwrapChildPid(std::string_view info) {
  constexpr std::string_view kKey = "\"child-pid\"";
  size_t at = info.find(kKey);
  if (at == std::string_view::npos) return std::nullopt;
  size_t i = at + kKey.size();
  auto skip_blanks = [&] {
    while (i < info.size() && (info[i] == ' ' || info[i] == '\t' || info[i] == '\n')) ++i;
  };
  skip_blanks();
  if (i >= info.size() || info[i] != ':') return std::nullopt;
  ++i;
  skip_blanks();
  int64_t pid = 0;
  size_t digits = 0;
  for (; i < info.size() && info[i] >= '0' && info[i] <= '9' && digits < 10; ++i, ++digits) {
    pid = pid * 10 + (info[i] - '0');
  }
  // The number must be complete: followed by something that is not a digit.
  if (digits == 0 || i >= info.size() || (info[i] >= '0' && info[i] <= '9')) return std::nullopt;
  if (pid <= 0 || pid > INT32_MAX) return std::nullopt;
  return static_cast<int>(pid);
}

std::optional<std::string> InjectPath(std::optional<std::string_view> path,
                                      std::string_view stub_dir, PathInjection mode) {
  if (mode == PathInjection::kOff || stub_dir.empty()) {
    if (!path) return std::nullopt;
    return std::string(*path);
  }
  std::string_view old = path ? *path : kFallbackPath;
  std::string stub_norm = NormalizePath(stub_dir);
  // Split on ':' keeping empty elements, drop copies of the stub dir.
  std::vector<std::string_view> kept;
  size_t i = 0;
  while (true) {
    size_t end = old.find(':', i);
    std::string_view part = old.substr(i, end == std::string_view::npos ? end : end - i);
    if (part.empty() || part[0] != '/' || NormalizePath(part) != stub_norm) kept.push_back(part);
    if (end == std::string_view::npos) break;
    i = end + 1;
  }
  // PATH held nothing but the stub dir: the result is the stub dir alone, not
  // "stub:" (whose empty element would mean the current directory).
  bool nothing_left = kept.empty();
  std::string rest;
  for (size_t k = 0; k < kept.size(); ++k) {
    if (k > 0) rest += ':';
    rest += kept[k];
  }
  if (nothing_left) return std::string(stub_dir);
  if (mode == PathInjection::kPrepend) return std::string(stub_dir) + ":" + rest;
  return rest + ":" + std::string(stub_dir);
}

std::vector<std::string> BuildEnv(const std::vector<std::string>& base_env,
                                  const NamespaceSpec& spec) {
  std::vector<std::string> env;
  std::set<std::string_view> seen;
  std::optional<size_t> path_index;
  for (const std::string& entry : base_env) {
    size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    std::string_view name = std::string_view(entry).substr(0, eq);
    if (!seen.insert(name).second || IsSessionVariable(name)) continue;
    if (name == "PATH") path_index = env.size();
    env.push_back(entry);
  }
  std::optional<std::string_view> old_path;
  if (path_index) old_path = std::string_view(env[*path_index]).substr(5);
  std::optional<std::string> new_path = InjectPath(old_path, spec.stub_dir, spec.path_injection);
  if (path_index) {
    env[*path_index] = "PATH=" + *new_path;  // InjectPath keeps a set PATH set
  } else if (new_path) {
    env.push_back("PATH=" + *new_path);
  }
  auto set = [&env](std::string_view name, const std::string& value) {
    if (!value.empty()) env.push_back(std::string(name) + "=" + value);
  };
  set(kEnvSocket, spec.socket_path);
  set(kEnvStubDir, spec.stub_dir);
  set(kEnvHost, spec.host);
  set(kEnvSession, spec.session_id);
  return env;
}

}  // namespace mproxy::ns
