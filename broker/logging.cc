// Logger registry over one shared sink.
#include "broker/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <mutex>

namespace mproxy::broker {
namespace {

std::mutex g_mu;
spdlog::sink_ptr g_sink;
spdlog::level::level_enum g_level = spdlog::level::warn;

}  // namespace

Status SetupLogging(const std::string& level, const std::string& file) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    return Error("unknown log level '" + level +
                 "' (use trace, debug, info, warn, error, critical or off)");
  }
  spdlog::sink_ptr sink;
  try {
    if (file.empty()) {
      sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    } else {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file);
    }
  } catch (const spdlog::spdlog_ex& e) {
    return Error("cannot open log file " + file + ": " + e.what());
  }
  sink->set_pattern("mproxy[%n] %l: %v");
  std::lock_guard<std::mutex> lock(g_mu);
  g_sink = sink;
  g_level = lvl;
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& l) {
    l->sinks().assign(1, sink);
    l->set_level(lvl);
  });
  return Ok();
}

std::shared_ptr<spdlog::logger> Log(const std::string& component) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (auto existing = spdlog::get(component)) return existing;
  if (!g_sink) {
    g_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    g_sink->set_pattern("mproxy[%n] %l: %v");
  }
  auto logger = std::make_shared<spdlog::logger>(component, g_sink);
  logger->set_level(g_level);
  spdlog::register_logger(logger);
  return logger;
}

void FlushLogs() {
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { l->flush(); });
}

}  // namespace mproxy::broker
