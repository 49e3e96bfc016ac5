// Command-line parsing for `mproxy` (CLI11): subcommands, shared connection
// options, and the program after `--`.
#pragma once

#include <string>
#include <vector>

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
};

struct CliOptions {
  enum class Command { kNone, kExec, kPaths };
  Command command = Command::kNone;
  ConnectOptions connect;
  std::vector<std::string> program;  // after --
  bool force_tty = false;            // -t
  bool no_tty = false;               // -T
  std::string cwd;                   // -w
  std::string log_level = "warn";
  std::string log_file;
  int verbose = 0;
};

// Parses argv. Returns the exit status to use right away (0 after --help or
// --version, 2 after a usage error, with the message printed), or -1 to go
// on with `out` filled in.
int ParseCommandLine(int argc, char** argv, CliOptions* out);

}  // namespace mproxy::broker
