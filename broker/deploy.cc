// FindAgentBundle and EnsureAgent.
#include "broker/deploy.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "broker/logging.h"

namespace mproxy::broker {
namespace fs = std::filesystem;

namespace {

Result<std::string> Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return Error("cannot read " + p.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

std::string CachePath(const AgentBundle& b) {
  return "\"$HOME/.cache/mproxy/agent/" + b.hash + "/mproxy-agent\"";
}

}  // namespace

Result<AgentBundle> FindAgentBundle() {
  std::vector<fs::path> candidates;
  if (const char* env = getenv("MPROXY_AGENT_BUNDLE"); env != nullptr && *env != '\0') {
    candidates.emplace_back(env);
  } else {
    std::error_code ec;
    fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (ec) return Error("cannot find this program's path: " + ec.message());
    fs::path dir = self.parent_path();
    candidates = {dir / ".." / "agent-bundle", dir / ".." / "lib" / "mproxy" / "agent-bundle"};
  }
  for (const fs::path& d : candidates) {
    if (!fs::exists(d / "bundle.sha256")) continue;
    AgentBundle b;
    b.dir = fs::weakly_canonical(d).string();
    auto hash = Slurp(d / "bundle.sha256");
    if (!hash) return hash.error();
    b.hash = Trim(*hash);
    auto meta = Slurp(d / "tree" / "BUNDLE");
    if (!meta) return meta.error();
    std::istringstream lines(*meta);
    std::string key, value;
    while (lines >> key >> value) {
      if (key == "arch") b.arch = value;
    }
    if (b.hash.size() != 64 || b.arch.empty()) return Error("damaged agent bundle in " + b.dir);
    return b;
  }
  return Error("cannot find the agent bundle (agent-bundle/ next to mproxy; set "
               "MPROXY_AGENT_BUNDLE to its directory)");
}

std::string AgentCommand(const AgentBundle& bundle) { return "exec " + CachePath(bundle); }

Result<DeployReport> EnsureAgent(Transport& transport, const AgentBundle& bundle,
                                 const std::function<void(const std::string&)>& progress) {
  DeployReport report;
  // One round trip in the common case: the agent is there.
  auto probe = transport.Run("test -x " + CachePath(bundle) + " && echo present || uname -sm", "");
  if (!probe) return probe.error().Wrap("checking for the agent");
  std::string answer = Trim(probe->out);
  if (answer == "present") return report;
  std::istringstream words(answer);
  std::string os, arch;
  words >> os >> arch;
  if (os.empty() || arch.empty()) {
    std::string why = Trim(probe->err);
    return Error("cannot tell the remote OS and architecture (uname -sm said '" + answer +
                 "', exit " + std::to_string(probe->exit_code) + ")" +
                 (why.empty() ? "" : ": " + why));
  }
  if (os != bundle.os || arch != bundle.arch) {
    return Error("no agent build for " + os + " " + arch + " (this mproxy carries " +
                 bundle.os + " " + bundle.arch + ")");
  }
  auto archive = Slurp(fs::path(bundle.dir) / "bundle.tar.gz");
  if (!archive) return archive.error();
  auto script = Slurp(fs::path(bundle.dir) / "install.sh");
  if (!script) return script.error();
  if (script->find('\'') != std::string::npos) return Error("install.sh must not contain a quote");
  if (progress) {
    progress("installing the agent on " + transport.Describe() + " (" +
             std::to_string(archive->size() / 1024) + " KiB, once per version)");
  }
  Log("deploy")->info("uploading agent {} to {}", bundle.hash.substr(0, 12), transport.Describe());
  auto r = transport.Run("sh -c '" + *script + "' mproxy-install " + bundle.hash, *archive);
  if (!r) return r.error().Wrap("uploading the agent");
  if (r->exit_code != 0) {
    std::string why = Trim(r->err);
    return Error("installing the agent failed (exit " + std::to_string(r->exit_code) + ")" +
                 (why.empty() ? "" : ": " + why));
  }
  report.uploaded = true;
  report.bytes = archive->size();
  return report;
}

}  // namespace mproxy::broker
