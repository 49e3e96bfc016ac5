// spdlog setup for the mproxy command: one logger per component, all writing
// to one sink (stderr, or the --log-file), at the --log-level.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

#include "common/result.h"

namespace mproxy::broker {

// Configures every logger made after this call. `level` is an spdlog level
// name ("trace" ... "off"); an empty `file` means stderr.
Status SetupLogging(const std::string& level, const std::string& file);

// The logger for `component` ("ssh", "link", "deploy", ...).
std::shared_ptr<spdlog::logger> Log(const std::string& component);

// Writes out what every logger holds (before an _exit).
void FlushLogs();

}  // namespace mproxy::broker
