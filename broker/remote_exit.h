// How a remote command's end shows locally: the exit status (code, 128+n for
// a signal, 255 when unknown) and the line to print, shared by `mproxy exec`
// and the shims of a session.
#pragma once

#include <optional>
#include <string>

#include "proto/messages.h"

namespace mproxy::broker {

struct RemoteExit {
  int status = 255;                   // what a shell would see: code, or 128+n
  std::optional<std::string> signal;  // the killing signal's name, known here
  bool core = false;
  // Without the "mproxy: " prefix; empty when there is nothing to say:
  // "grep: command not found on build-box", "build-box: cwd /x: ...".
  std::string message;
};

RemoteExit DescribeExit(const proto::Exit& exit, const std::string& host_label);

}  // namespace mproxy::broker
