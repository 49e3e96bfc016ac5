// Helpers shared by the SSH transport tests: options for the fixture's sshd,
// a waitable one-shot status, and running small local commands.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>

#include "broker/ssh_options.h"
#include "common/result.h"
#include "tests/support/sshd_fixture.h"

namespace mproxy::testing {

// Options that reach the fixture directly, reading no ssh config.
inline broker::SshOptions OptionsFor(const SshdFixture& f) {
  broker::SshOptions o;
  o.host = f.host();
  o.port = f.port();
  o.user = f.user();
  o.identity_files = {f.key_path()};
  o.known_hosts_path = f.known_hosts_path();
  o.config_path = "none";
  o.keepalive_interval = std::chrono::seconds(1);
  o.keepalive_count_max = 3;
  o.allow_prompts = false;
  return o;
}

// A Status set once from any thread, waited for with an anti-hang timeout.
class StatusLatch {
 public:
  void Set(const Status& s) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!value_) value_ = s;
    cv_.notify_all();
  }
  std::optional<Status> Wait(std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [this] { return value_.has_value(); });
    return value_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Status> value_;
};

// Runs a shell command locally; true on exit 0.
inline bool Sh(const std::string& command) { return std::system(command.c_str()) == 0; }

}  // namespace mproxy::testing
