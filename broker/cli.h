// Command-line parsing for `mproxy` (CLI11): the session form
// `mproxy [options] HOST -- program`, the `exec` and `paths` subcommands,
// and the configuration files layered under the flags.
#pragma once

#include <string>
#include <vector>

#include "broker/config.h"

namespace mproxy::broker {

struct ConnectOptions {
  std::string target;  // [user@]host[:port] or ssh://...
  int port = 0;
  std::string user;
  std::vector<std::string> identities;
  std::string ssh_config;  // empty: ~/.ssh/config of the passwd entry
  std::string known_hosts;
  bool accept_new_host_key = false;
  std::string transport = "ssh";  // ssh | local | command
  std::string via;                // command prefix for transport "command"
  std::string agent;              // a local agent binary or bundle to use
  // Passwords and passphrases may be asked on the terminal (not when a
  // session reconnects: the program owns the terminal then).
  bool allow_prompts = true;
};

struct CliOptions {
  enum class Command { kNone, kSession, kExec, kPaths };
  Command command = Command::kNone;
  ConnectOptions connect;            // after the configuration is applied
  std::vector<std::string> program;  // after --
  bool force_tty = false;            // exec -t
  bool no_tty = false;               // exec -T
  std::string cwd;                   // -w: remote dir for exec, local dir for a session
  Config config;                     // files + flags
  std::string log_level;             // resolved: config, --log-level, --verbose
  std::string log_file;
};

// Parses argv and loads the configuration. Returns the exit status to use
// right away (0 after --help or --version, 2 after a usage or configuration
// error, with the message printed), or -1 to go on with `out` filled in.
int ParseCommandLine(int argc, char** argv, CliOptions* out);

}  // namespace mproxy::broker
