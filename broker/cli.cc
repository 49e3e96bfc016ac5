// ParseCommandLine with CLI11.
#include "broker/cli.h"

#include <CLI/CLI.hpp>

namespace mproxy::broker {
namespace {

void AddConnectOptions(CLI::App* app, ConnectOptions* c) {
  app->add_option("-p,--port", c->port, "Remote SSH port")->check(CLI::Range(1, 65535));
  app->add_option("-l,--user", c->user, "Remote user name");
  app->add_option("-i,--identity", c->identities, "Private key file (repeatable)");
  app->add_option("-F,--ssh-config", c->ssh_config,
                  "OpenSSH client config file (default: ~/.ssh/config)");
  app->add_option("--known-hosts", c->known_hosts,
                  "known_hosts file (default: ~/.ssh/known_hosts)");
  app->add_flag("--accept-new-host-key", c->accept_new_host_key,
                "Trust and record the host key of a host seen for the first time");
  app->add_option("--transport", c->transport,
                  "How to reach the agent: ssh (default), local (this machine), or command "
                  "(through --via)")
      ->check(CLI::IsMember({"ssh", "local", "command"}));
  app->add_option("--via", c->via,
                  "Command whose stdio reaches the remote side, e.g. 'docker exec -i NAME' "
                  "(implies --transport command)");
  app->add_option("--agent", c->agent, "Use this local mproxy-agent build instead of the bundled one");
}

}  // namespace

int ParseCommandLine(int argc, char** argv, CliOptions* out) {
  CLI::App app{
      "mproxy: run a program here while the commands it starts run on a remote host.\n"
      "  mproxy exec [options] [user@]host[:port] -- command [args...]\n"
      "  mproxy paths [options] [user@]host[:port]",
      "mproxy"};
  app.set_version_flag("-V,--version", std::string("mproxy ") + MPROXY_VERSION);
  app.require_subcommand(1);
  app.add_option("--log-level", out->log_level,
                 "trace, debug, info, warn (default), error, critical or off");
  app.add_option("--log-file", out->log_file, "Write logs to this file instead of stderr");
  app.add_flag("-v,--verbose", out->verbose, "More log output (-v info, -vv debug, -vvv trace)");

  CLI::App* exec = app.add_subcommand(
      "exec", "Run one command on the remote host with this terminal's stdin, stdout and stderr");
  AddConnectOptions(exec, &out->connect);
  exec->add_flag("-t", out->force_tty, "Give the remote command a terminal even without one here");
  exec->add_flag("-T", out->no_tty, "Never give the remote command a terminal");
  exec->add_option("-w,--workdir", out->cwd, "Remote working directory (default: home)");
  exec->add_option("target", out->connect.target, "[user@]host[:port] or ssh://user@host:port")
      ->required();
  exec->add_option("command", out->program, "The command and its arguments, after --")
      ->required();
  exec->positionals_at_end();

  CLI::App* paths = app.add_subcommand("paths", "List the commands on the remote PATH");
  AddConnectOptions(paths, &out->connect);
  paths->add_option("target", out->connect.target, "[user@]host[:port] or ssh://user@host:port")
      ->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (*exec) out->command = CliOptions::Command::kExec;
  // CLI11 keeps a "--" that separates the target from the command.
  if (!out->program.empty() && out->program.front() == "--") out->program.erase(out->program.begin());
  if (*exec && out->program.empty()) {
    std::fprintf(stderr, "mproxy: exec: no command given (mproxy exec HOST -- COMMAND ARGS...)\n");
    return 2;
  }
  if (*paths) out->command = CliOptions::Command::kPaths;
  if (!out->connect.via.empty()) out->connect.transport = "command";
  if (out->connect.transport == "command" && out->connect.via.empty()) {
    std::fprintf(stderr, "mproxy: --transport command needs --via 'COMMAND'\n");
    return 2;
  }
  if (out->force_tty && out->no_tty) {
    std::fprintf(stderr, "mproxy: -t and -T contradict each other\n");
    return 2;
  }
  return -1;
}

}  // namespace mproxy::broker
