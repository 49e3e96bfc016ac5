// The transparent session, `mproxy HOST -- program`: the program runs here
// (inside bwrap when it works) with the path-stub directory first on its
// PATH, and every stub it runs comes back through the shim socket to run on
// the agent. See docs/CONFIG.md ("What a session intercepts").
#pragma once

#include <sys/resource.h>
#include <uv.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "broker/agent_link.h"
#include "broker/cli.h"
#include "broker/config.h"

namespace mproxy::broker {

struct SessionOptions {
  std::vector<std::string> program;  // the entrypoint's argv; not empty
  std::string workdir;               // -w: the program's directory; empty: here
  Config config;                     // mounts, local rules, env, PATH injection
  std::string host_label;            // for messages
  // Fds this process inherited (kept open for the program); every other fd
  // is made close-on-exec before the program starts.
  std::set<int> inherited_fds;
  // Signals mproxy found ignored when it started (the program inherits
  // that; the others start at their default).
  std::set<int> ignored_at_start;
  // The fd limit to give the program (mproxy raises its own), if changed.
  std::optional<rlimit> program_fd_limit;
  // How the first connection was made: a lost connection is made again
  // this way (without prompts), and the session goes on over it.
  ConnectOptions connect;
};

// Raises this process's soft fd limit to the hard one (a session keeps a
// few fds per running command). Returns the old limit when it changed.
std::optional<rlimit> RaiseFdLimit();

// Runs the session on `loop` over a ready `link` and returns mproxy's exit
// status: the program's (128+n when a signal killed it), 127 when it cannot
// be found, 255 when the session cannot be set up (the reason printed).
// Blocks; loop thread.
int RunSession(uv_loop_t* loop, AgentLink* link, const SessionOptions& options);

// True while a reconnect attempt of an ended session still runs on its own
// thread (blocked in a connect): the process should then leave with _exit,
// since exit's destructors would run under that thread's feet.
bool ReconnectPending();

// The program as the local PATH resolves it (what execvp would run), or
// empty when there is none: checked before connecting.
std::string ResolveLocalProgram(const std::string& program);

// The fds open in this process now.
std::set<int> OpenFds();

}  // namespace mproxy::broker
