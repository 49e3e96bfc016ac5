// One remote command seen from the shim: connect to the broker, send the
// request with the fds, relay terminal input, output, signals and resizes,
// and end the process exactly as the remote command ended.
#pragma once

#include <string>

#include "proto/shim_wire.h"

namespace mproxy::shim {

// The shim's exit status for its own failures (no session, lost session).
inline constexpr int kExitSessionError = 255;

struct Invocation {
  std::string name;         // the command's name in messages: "grep"
  std::string socket_path;  // $MPROXY_SOCK
  // exe, argv, env and cwd; Run() fills in the fds and the terminal.
  proto::shim::Request request;
};

// Runs the command and ends the process: with the remote exit code, by the
// remote signal, or with kExitSessionError and one line on stderr. Called
// once, from main(); installs signal handlers for the rest of the process.
[[noreturn]] void Run(Invocation inv);

}  // namespace mproxy::shim
