// The agent's diagnostics: plain lines on stderr, off unless asked for by
// --log-level or MPROXY_AGENT_LOG. Stdout carries protocol frames only.
#pragma once

#include <optional>
#include <string_view>

namespace mproxy::agent {

enum class LogLevel { kTrace = 0, kDebug, kInfo, kWarn, kError, kOff };

// "trace", "debug", "info", "warn", "error", "off", or nullopt.
std::optional<LogLevel> ParseLogLevel(std::string_view name);

// Process-wide; set once by main before the loop starts.
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

// Writes "mproxy-agent: <level>: <text>\n" to stderr when `level` is enabled.
void Logf(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

}  // namespace mproxy::agent
