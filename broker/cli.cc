// ParseCommandLine with CLI11, then the configuration files under the flags.
#include "broker/cli.h"

#include <CLI/CLI.hpp>
#include <cstring>

#include "common/passwd.h"

namespace mproxy::broker {
namespace {

// Flags as given, before the configuration files are layered under them.
struct RawFlags {
  std::string target;
  int port = 0;
  std::string user;
  std::vector<std::string> identities;
  std::string ssh_config;
  std::string known_hosts;
  bool accept_new_host_key = false;
  std::string config_file;
  std::vector<std::string> mounts;
  std::vector<std::string> local;
  bool no_workspace = false;
  std::string log_level;
  std::string log_file;
  int verbose = 0;
};

void AddConnectOptions(CLI::App* app, RawFlags* f, ConnectOptions* c) {
  app->add_option("-p,--port", f->port, "Remote SSH port")->check(CLI::Range(1, 65535));
  app->add_option("-l,--user", f->user, "Remote user name");
  app->add_option("-i,--identity", f->identities, "Private key file (repeatable)")
      ->allow_extra_args(false);
  app->add_option("-F,--ssh-config", f->ssh_config,
                  "OpenSSH client config file (default: ~/.ssh/config)");
  app->add_option("--known-hosts", f->known_hosts,
                  "known_hosts file (default: ~/.ssh/known_hosts)");
  app->add_flag("--accept-new-host-key", f->accept_new_host_key,
                "Trust and record the host key of a host seen for the first time");
  app->add_option("--transport", c->transport,
                  "How to reach the agent: ssh (default), local (this machine), or command "
                  "(through --via)")
      ->check(CLI::IsMember({"ssh", "local", "command"}));
  app->add_option("--via", c->via,
                  "Command whose stdio reaches the remote side, e.g. 'docker exec -i NAME' "
                  "(implies --transport command)");
  app->add_option("--agent", c->agent, "Use this local mproxy-agent build instead of the bundled one");
  app->add_option("--config", f->config_file,
                  "Configuration file read after /etc/mproxy/mproxy.toml and "
                  "~/.config/mproxy/mproxy.toml");
}

void AddLogOptions(CLI::App* app, RawFlags* f, bool short_v) {
  app->add_option("--log-level", f->log_level,
                  "trace, debug, info, warn (default), error, critical or off");
  app->add_option("--log-file", f->log_file, "Write logs to this file instead of stderr");
  app->add_flag(short_v ? "-v,--verbose" : "--verbose", f->verbose,
                "More log output (once: info, twice: debug, three times: trace)");
}

// The configuration files, then the flags over them. Prints and returns 2 on
// a bad file or flag value.
int ResolveConfig(const RawFlags& f, CliOptions* out) {
  auto loaded = LoadConfig(DefaultConfigSources(f.config_file));
  if (!loaded) {
    std::fprintf(stderr, "mproxy: %s\n", loaded.error().message().c_str());
    return 2;
  }
  Config config = std::move(*loaded);
  ConfigLayer flags;
  std::string home = HomeDirectory();
  if (!f.target.empty()) flags.host = f.target;
  if (f.port != 0) flags.port = f.port;
  if (!f.user.empty()) flags.user = f.user;
  if (!f.identities.empty()) flags.identities = f.identities;
  if (!f.ssh_config.empty()) flags.ssh_config = f.ssh_config;
  if (!f.known_hosts.empty()) flags.known_hosts = f.known_hosts;
  if (f.accept_new_host_key) flags.accept_new_host_key = true;
  if (!f.local.empty()) {
    auto rules = LocalRules::Parse(f.local);
    if (!rules) {
      std::fprintf(stderr, "mproxy: --local: %s\n", rules.error().message().c_str());
      return 2;
    }
    flags.local = std::move(*rules);
  }
  if (!f.mounts.empty()) {
    std::vector<Mount> mounts;
    for (const auto& spec : f.mounts) {
      auto m = ParseMount(spec, home);
      if (!m) {
        std::fprintf(stderr, "mproxy: -v: %s\n", m.error().message().c_str());
        return 2;
      }
      mounts.push_back(std::move(*m));
    }
    flags.mounts = std::move(mounts);
  }
  if (f.no_workspace) flags.workspace_mount = false;
  if (!f.log_level.empty()) flags.log_level = f.log_level;
  if (!f.log_file.empty()) flags.log_file = f.log_file;
  ApplyCommandLine(flags, &config);

  out->connect.target = config.host;
  out->connect.port = config.port;
  out->connect.user = config.user;
  out->connect.identities = config.identities;
  out->connect.ssh_config = config.ssh_config == "none" ? "/dev/null" : config.ssh_config;
  out->connect.known_hosts = config.known_hosts;
  out->connect.accept_new_host_key = config.accept_new_host_key;
  static const char* kByVerbosity[] = {nullptr, "info", "debug", "trace"};
  out->log_level = f.verbose > 0 ? kByVerbosity[std::min(f.verbose, 3)] : config.log_level;
  out->log_file = config.log_file;
  out->config = std::move(config);
  return -1;
}

}  // namespace

int ParseCommandLine(int argc, char** argv, CliOptions* out) {
  // Everything after the first "--" is the program, whatever it looks like;
  // CLI11 sees only what comes before.
  int cli_argc = argc;
  bool have_program = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) {
      cli_argc = i;
      have_program = true;
      out->program.assign(argv + i + 1, argv + argc);
      break;
    }
  }

  CLI::App app{
      "mproxy: run a program here while the commands it starts run on a remote host.\n"
      "  mproxy [options] [user@]host[:port] -- program [args...]\n"
      "  mproxy exec [options] [user@]host[:port] -- command [args...]\n"
      "  mproxy paths [options] [user@]host[:port]\n"
      "The host may come from the configuration file (docs/CONFIG.md) instead.",
      "mproxy"};
  app.set_version_flag("-V,--version", std::string("mproxy ") + MPROXY_VERSION);
  app.require_subcommand(0, 1);
  RawFlags f;
  std::vector<std::string> positionals;

  AddConnectOptions(&app, &f, &out->connect);
  AddLogOptions(&app, &f, /*short_v=*/false);
  // Repeatable options take one value each time, so `--local cat HOST`
  // leaves HOST alone.
  app.add_option("-v,--mount", f.mounts,
                 "local:remote: the remote directory is mounted over the local one (repeatable)")
      ->allow_extra_args(false);
  app.add_flag("--no-workspace", f.no_workspace,
               "Do not mount the remote directory of the same path over the working directory");
  app.add_option("--local", f.local,
                 "Keep this command local: /absolute/path, basename, or /regex/ (repeatable)")
      ->allow_extra_args(false);
  app.add_option("-w,--workdir", out->cwd, "The program's working directory (default: here)");
  app.add_option("target", positionals,
                 "[user@]host[:port] or ssh://user@host:port, then the program (after --)");

  CLI::App* exec = app.add_subcommand(
      "exec", "Run one command on the remote host with this terminal's stdin, stdout and stderr");
  std::vector<std::string> exec_positionals;
  AddConnectOptions(exec, &f, &out->connect);
  AddLogOptions(exec, &f, /*short_v=*/true);
  exec->add_flag("-t", out->force_tty, "Give the remote command a terminal even without one here");
  exec->add_flag("-T", out->no_tty, "Never give the remote command a terminal");
  exec->add_option("-w,--workdir", out->cwd, "Remote working directory (default: home)");
  exec->add_option("target", exec_positionals,
                   "[user@]host[:port] or ssh://user@host:port, then the command");

  CLI::App* paths = app.add_subcommand("paths", "List the commands on the remote PATH");
  std::vector<std::string> paths_positionals;
  AddConnectOptions(paths, &f, &out->connect);
  AddLogOptions(paths, &f, /*short_v=*/true);
  paths->add_option("target", paths_positionals, "[user@]host[:port] or ssh://user@host:port");

  try {
    app.parse(cli_argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  // Positionals: the target, then (without "--") the program.
  std::vector<std::string>* pos = *exec ? &exec_positionals : *paths ? &paths_positionals : &positionals;
  if (!pos->empty()) {
    f.target = pos->front();
    if (!have_program) out->program.assign(pos->begin() + 1, pos->end());
    else if (pos->size() > 1) {
      std::fprintf(stderr, "mproxy: unexpected '%s' before -- (the program goes after --)\n",
                   (*pos)[1].c_str());
      return 2;
    }
  }
  out->command = *exec ? CliOptions::Command::kExec
                 : *paths ? CliOptions::Command::kPaths
                          : CliOptions::Command::kSession;
  if (out->command == CliOptions::Command::kPaths && !out->program.empty()) {
    std::fprintf(stderr, "mproxy: paths takes no command\n");
    return 2;
  }
  if (out->command != CliOptions::Command::kPaths && out->program.empty()) {
    std::fprintf(stderr, "%s",
                 out->command == CliOptions::Command::kExec
                     ? "mproxy: exec: no command given (mproxy exec HOST -- COMMAND ARGS...)\n"
                     : "mproxy: no program given (mproxy HOST -- PROGRAM ARGS...; see --help)\n");
    return 2;
  }
  if (int rc = ResolveConfig(f, out); rc >= 0) return rc;
  if (!out->connect.via.empty()) out->connect.transport = "command";
  if (out->connect.transport == "command" && out->connect.via.empty()) {
    std::fprintf(stderr, "mproxy: --transport command needs --via 'COMMAND'\n");
    return 2;
  }
  if (out->connect.target.empty() && out->connect.transport == "ssh") {
    std::fprintf(stderr,
                 "mproxy: no host given (on the command line or as 'host' in the configuration)\n");
    return 2;
  }
  if (out->force_tty && out->no_tty) {
    std::fprintf(stderr, "mproxy: -t and -T contradict each other\n");
    return 2;
  }
  return -1;
}

}  // namespace mproxy::broker
