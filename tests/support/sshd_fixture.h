// A real OpenSSH sshd on 127.0.0.1 for tests (via scripts/test-sshd.sh), and
// the "skipped" exit that ctest counts as skipped, never as passed.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"

namespace mproxy::testing {

// How a test that cannot run here gets counted as skipped.
//
// Catch2 v2 has no SKIP. Skip() prints "SKIPPED: <reason>" on stdout and ends
// the process at once with kSkipReturnCode (77, the automake convention).
// Register test binaries with mproxy_discover_tests(target prefix) from
// tests/support/CMakeLists.txt: it runs catch_discover_tests with the ctest
// property SKIP_RETURN_CODE 77, so ctest reports "Skipped" (and lists it under
// "The following tests did not run"). Any other exit code keeps its meaning.
//
// Because every discovered TEST_CASE is its own process under ctest, Skip()
// skips exactly one case. Run by hand, a test binary stops at the first Skip().
inline constexpr int kSkipReturnCode = 77;
[[noreturn]] void Skip(const std::string& reason);

struct SshdOptions {
  // The login account. Empty: "mproxy-test" when running as root (created and
  // unlocked if missing), otherwise the current user.
  std::string user;
  // Non-empty (root only, with `user`): the account gets this password and
  // sshd accepts password logins besides keys.
  std::string password;
};

// One sshd with its own host key, client key, authorized_keys, known_hosts and
// ssh_config in a fresh temporary directory. Running as root, sshd lives in
// its own mount namespace where marker_path() exists; locally it does not.
//
// Owned by the test that started it; not thread-safe (the accessors are
// const and may be read from any thread). The destructor kills sshd and every
// process it started, and deletes the directory.
class SshdFixture {
 public:
  // Creates the directory and runs `test-sshd.sh start`.
  static Result<std::unique_ptr<SshdFixture>> Start(SshdOptions options = {});
  // Start(), or Skip() with the reason when sshd cannot run here.
  static std::unique_ptr<SshdFixture> StartOrSkip(SshdOptions options = {});

  SshdFixture(const SshdFixture&) = delete;
  SshdFixture& operator=(const SshdFixture&) = delete;
  ~SshdFixture();

  const std::string& host() const { return host_; }          // "127.0.0.1"
  int port() const { return port_; }
  const std::string& user() const { return user_; }
  const std::string& key_path() const { return key_path_; }  // private key, no passphrase
  const std::string& known_hosts_path() const { return known_hosts_path_; }
  // An ssh_config with `Host alias()` naming host, port, user, key and
  // known_hosts; works with `ssh -F config_path() alias()` too.
  const std::string& config_path() const { return config_path_; }
  const std::string& alias() const { return alias_; }        // "mproxy-test"
  const std::string& host_public_key_path() const { return host_pub_path_; }
  // A file that exists only on the remote side; empty without a namespace.
  const std::string& marker_path() const { return marker_path_; }
  // A writable directory (tmpfs, mode 1777) that exists only remotely.
  const std::string& remote_dir() const { return remote_dir_; }
  const std::string& dir() const { return dir_; }
  const std::string& log_path() const { return log_path_; }

  // The last `lines` lines of sshd.log, for failure messages.
  std::string LogTail(int lines = 20) const;

  // Kills sshd and every process in its namespace (the sessions and their
  // children) with SIGKILL: to the client it looks like the host died. The
  // directory stays until destruction. Idempotent.
  Status Stop();

  // SIGSTOP / SIGCONT to sshd and every process in its namespace: the TCP
  // connection stays up (the kernel ACKs) but nothing answers, like a hung
  // host. Needs the namespace (marker_path() non-empty).
  Status Pause();
  Status Resume();
  // Ends every client connection; sshd goes on accepting new ones (a
  // network drop that heals).
  Status DropConnections();

 private:
  SshdFixture() = default;

  std::string script_;
  std::string dir_;
  std::string host_;
  int port_ = 0;
  std::string user_;
  std::string key_path_;
  std::string known_hosts_path_;
  std::string config_path_;
  std::string alias_;
  std::string host_pub_path_;
  std::string marker_path_;
  std::string remote_dir_;
  std::string log_path_;
  bool running_ = false;
};

}  // namespace mproxy::testing
