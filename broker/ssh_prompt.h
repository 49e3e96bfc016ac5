// Asks the user something on the controlling terminal (/dev/tty), never on
// stdin or stdout, which belong to the program mproxy runs.
#pragma once

#include <string>

#include "common/result.h"

namespace mproxy::broker {

// True when this process has a controlling terminal it can open.
bool HaveTerminal();

// Writes `prompt` to /dev/tty and reads one line (without the newline), with
// echo off unless `echo`. An error when there is no terminal.
Result<std::string> PromptOnTerminal(const std::string& prompt, bool echo);

}  // namespace mproxy::broker
