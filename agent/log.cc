// Leveled stderr logging for the agent (no spdlog: the agent stays small).
#include "agent/log.h"

#include <unistd.h>

#include <cstdarg>
#include <cstdio>

namespace mproxy::agent {
namespace {

LogLevel g_level = LogLevel::kOff;

constexpr const char* kNames[] = {"trace", "debug", "info", "warn", "error", "off"};

}  // namespace

std::optional<LogLevel> ParseLogLevel(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(LogLevel::kOff); ++i) {
    if (name == kNames[i]) return static_cast<LogLevel>(i);
  }
  if (name == "warning") return LogLevel::kWarn;
  return std::nullopt;
}

void SetLogLevel(LogLevel level) { g_level = level; }

bool LogEnabled(LogLevel level) { return level != LogLevel::kOff && level >= g_level; }

void Logf(LogLevel level, const char* format, ...) {
  if (!LogEnabled(level)) return;
  char text[1024];
  va_list args;
  va_start(args, format);
  vsnprintf(text, sizeof text, format, args);
  va_end(args);
  char line[1200];
  int n = snprintf(line, sizeof line, "mproxy-agent[%d]: %s: %s\n", static_cast<int>(getpid()),
                   kNames[static_cast<int>(level)], text);
  if (n > 0) {
    // One write per line so lines from concurrent writers do not interleave.
    (void)!write(STDERR_FILENO, line, static_cast<size_t>(n) < sizeof line ? n : sizeof line - 1);
  }
}

}  // namespace mproxy::agent
