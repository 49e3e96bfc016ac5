// Transport selection and agent start-up.
#include "broker/connect.h"

#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <sstream>

#include "broker/deploy.h"
#include "broker/logging.h"
#include "broker/process_transport.h"
#include "broker/ssh_transport.h"
#include "broker/target.h"

namespace mproxy::broker {
namespace fs = std::filesystem;

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

Result<std::string> FindCompanion(const std::string& name, const char* env_var,
                                  const std::string& build_dir, const std::string& or_else) {
  if (const char* env = getenv(env_var); env != nullptr && *env != '\0') return std::string(env);
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return Error("cannot find this program's path: " + ec.message());
  fs::path dir = self.parent_path();
  for (const fs::path& candidate :
       {dir / name, dir / ".." / build_dir / name, dir / ".." / "lib" / "mproxy" / name}) {
    if (access(candidate.c_str(), X_OK) == 0) return fs::weakly_canonical(candidate).string();
  }
  return Error("cannot find " + name + " next to " + self.string() + " (set " + env_var + or_else +
               ")");
}

Result<std::string> FindLocalAgent() {
  return FindCompanion("mproxy-agent", "MPROXY_AGENT_PATH", "agent", " or pass --agent");
}

namespace {

std::vector<std::string> SplitWords(const std::string& s) {
  std::vector<std::string> words;
  std::istringstream in(s);
  std::string w;
  while (in >> w) words.push_back(w);
  return words;
}

// Makes sure the bundled agent is installed behind `transport` and returns
// the command that starts it. A first upload shows one line on a terminal.
Result<std::string> DeployBundle(Transport& transport, const std::string& label) {
  auto bundle = FindAgentBundle();
  if (!bundle) return bundle.error();
  bool tty = isatty(STDERR_FILENO);
  auto deployed = EnsureAgent(transport, *bundle, [tty](const std::string& line) {
    if (tty) std::fprintf(stderr, "mproxy: %s\n", line.c_str());
  });
  if (!deployed) return deployed.error().Wrap(label);
  return AgentCommand(*bundle);
}

}  // namespace

Result<Connection> Connect(const ConnectOptions& options) {
  Connection c;
  if (options.transport == "local") {
    c.label = "local";
    c.transport = std::make_unique<ProcessTransport>(std::vector<std::string>{});
    std::string agent = options.agent;
    if (agent.empty()) {
      auto found = FindLocalAgent();
      if (!found) return found.error();
      agent = *found;
    }
    auto stream = c.transport->Open("exec " + ShellQuote(agent));
    if (!stream) return stream.error();
    c.agent_stream = std::move(*stream);
    return c;
  }
  if (options.transport == "command") {
    auto words = SplitWords(options.via);
    if (words.empty()) return Error("--via needs a command");
    c.label = options.target.empty() ? words.back() : options.target;
    c.transport = std::make_unique<ProcessTransport>(words);
    std::string command;
    if (!options.agent.empty()) {
      command = "exec " + ShellQuote(options.agent);
    } else {
      // Zero-install through the command too (a container, a chroot).
      auto deployed = DeployBundle(*c.transport, c.label);
      if (!deployed) return deployed.error();
      command = *deployed;
    }
    auto stream = c.transport->Open(command);
    if (!stream) return stream.error();
    c.agent_stream = std::move(*stream);
    return c;
  }
  auto target = ParseTarget(options.target);
  if (!target) return target.error();
  SshOptions ssh;
  ssh.host = target->host;
  ssh.port = options.port != 0 ? options.port : target->port;
  ssh.user = !options.user.empty() ? options.user : target->user;
  ssh.identity_files = options.identities;
  ssh.config_path = options.ssh_config;
  ssh.known_hosts_path = options.known_hosts;
  ssh.accept_new_host_key = options.accept_new_host_key;
  ssh.allow_prompts = options.allow_prompts;
  c.label = target->host;

  auto transport = SshTransport::Connect(ssh);
  if (!transport) return transport.error();
  c.transport = std::move(*transport);
  auto command = DeployBundle(*c.transport, c.label);
  if (!command) return command.error();
  auto stream = c.transport->Open(*command);
  if (!stream) return stream.error();
  c.agent_stream = std::move(*stream);
  return c;
}

}  // namespace mproxy::broker
