// End-to-end tests of whole sessions: `mproxy TARGET -- bash -c '...'` against
// the loopback sshd, run either as root or as an unprivileged user that the
// fixture creates. Everything a case needs that this machine may lack (sshd,
// its namespace, FUSE, a usable bwrap) is checked up front and Skip()ped.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tests/e2e/child.h"
#include "tests/support/sshd_fixture.h"

namespace mproxy::session_test {

using e2e::Child;

// Who runs mproxy.
enum class As {
  kRoot,  // root, with the fixture's ssh_config and Host alias (-F)
  // A plain account with its own ~/.ssh (key, known_hosts), reached with
  // -i/-p/-l/--known-hosts. Created when the test runs as root; otherwise
  // the invoking user, who is unprivileged already. Its stdin, stdout and
  // stderr are pipes the test process made, so when that is root they belong
  // to root, as under `sudo -u`.
  kUser,
};

// Anti-hang limit of one mproxy run; the cases finish in seconds.
inline constexpr std::chrono::seconds kLimit(120);

// One sshd plus the account that runs mproxy against it. Owned by one test;
// not thread-safe. The constructor Skip()s (exit 77) when this variant cannot
// run here, naming what is missing.
class SessionFixture {
 public:
  explicit SessionFixture(As as);
  ~SessionFixture();
  SessionFixture(const SessionFixture&) = delete;
  SessionFixture& operator=(const SessionFixture&) = delete;

  const testing::SshdFixture& sshd() const { return *sshd_; }
  As as() const { return as_; }
  uid_t uid() const { return uid_; }
  const std::string& user() const { return user_; }
  // The remote-only marker file, and its content ("mproxy remote side, ...").
  const std::string& marker() const { return sshd_ ? sshd_->marker_path() : kNoMarker; }
  std::string MarkerText() const;
  // The TARGET argument given to mproxy, which is also how mproxy names the
  // host in its messages ("command not found on HOST").
  const std::string& target() const { return target_; }
  // A local directory owned by the running user, removed at the end. Every
  // session sees it as $T (and the marker as $M).
  const std::string& scratch() const { return scratch_; }

  // argv running `cmd` as the fixture's user: in a session of its own (so
  // signals to its process group never reach the test), with cwd "/" and a
  // clean environment: PATH, HOME, USER, LOGNAME, SHELL, LANG=C.UTF-8,
  // OUTER_ONLY (set outside, never changed), M, T, the agent bundle, plus
  // `env` ("NAME=value").
  std::vector<std::string> AsUser(const std::vector<std::string>& cmd,
                                  const std::vector<std::string>& env = {}) const;
  // How mproxy reaches the sshd as this user: `-F CONFIG` (root) or
  // `-i KEY --known-hosts F -p PORT -l USER` (the plain user).
  const std::vector<std::string>& connect_opts() const { return connect_opts_; }
  // `mproxy [opts] [connection options] TARGET -- program...` as is, for a
  // caller that already runs as the fixture's user in a clean environment
  // (a tmux pane).
  std::vector<std::string> MproxyCommand(const std::vector<std::string>& program,
                                         const std::vector<std::string>& opts = {}) const;
  // The same through AsUser().
  std::vector<std::string> Mproxy(const std::vector<std::string>& program,
                                  const std::vector<std::string>& opts = {},
                                  const std::vector<std::string>& env = {}) const;
  // `mproxy paths [connection options] TARGET`: the remote PATH commands, one
  // "name<TAB>path" per line.
  std::vector<std::string> Paths() const;
  // Mproxy() with `bash -c script`.
  std::vector<std::string> MproxyBash(const std::string& script,
                                      const std::vector<std::string>& opts = {}) const;

  // Runs MproxyBash(script, opts) to the end with `input` on its stdin.
  Child::Result Bash(const std::string& script, const std::vector<std::string>& opts = {},
                     std::string input = "") const;
  // Starts it and returns at once (stdin /dev/null).
  std::unique_ptr<Child> SpawnBash(const std::string& script,
                                   const std::vector<std::string>& opts = {}) const;

  // `sh -c script` on the remote side over plain OpenSSH (not through
  // mproxy), for setting things up and for looking at remote processes.
  Child::Result Remote(const std::string& script) const;
  // `sh -c script` as root in the sshd's mount namespace (nsenter), e.g. to
  // mount something only the remote side sees. Skip()s unless root.
  Child::Result InRemoteNamespace(const std::string& script) const;

  // Pids of remote processes (in the sshd's mount namespace) whose command
  // line matches the extended regex `pattern` (pgrep -f, run remotely).
  std::vector<pid_t> RemotePids(const std::string& pattern) const;
  // Polls RemotePids until it is non-empty (true) or `limit` passes.
  bool WaitForRemote(const std::string& pattern, std::chrono::seconds limit) const;
  // Polls RemotePids until it is empty (true) or `limit` passes.
  bool WaitForNoRemote(const std::string& pattern, std::chrono::seconds limit) const;

  // SIGSTOP / SIGCONT every process of the sshd (a hung host).
  Status PauseRemote() const { return sshd_->Pause(); }
  Status ResumeRemote() const { return sshd_->Resume(); }
  Status DropConnections() const { return sshd_->DropConnections(); }

  // Makes `path` belong to the running user (no-op when that is us).
  void GiveToUser(const std::string& path) const;

  // Stops sshd, removes the fixture's files and Skip()s: for a case that finds
  // out late that it cannot run.
  [[noreturn]] void SkipNow(const std::string& reason) const;

  // Who runs mproxy and against what, for failure messages.
  std::string Diagnostics() const;

 private:
  void CreateUser();
  void GiveUserTheKey();
  void CheckFuse() const;
  void CheckBwrap() const;

  static inline const std::string kNoMarker;

  As as_;
  std::unique_ptr<testing::SshdFixture> sshd_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  std::string user_;
  std::string home_;
  bool switch_user_ = false;  // run through setpriv
  std::vector<std::string> connect_opts_;
  std::string target_;
  std::string ssh_dir_;  // the user's per-fixture ~/.ssh files, removed at the end
  std::string scratch_;
};

// Pids of local processes whose argv is exactly `argv` and whose environment
// has MPROXY_SOCK: the shims standing in for remote commands (the remote
// commands themselves have the same argv but not that variable).
std::vector<pid_t> FindShims(const std::vector<std::string>& argv);
// Polls FindShims until exactly one is found, and returns it; -1 on timeout.
pid_t WaitForShim(const std::vector<std::string>& argv, std::chrono::seconds limit);

// True when one line of `text`, trailing blanks ignored, is exactly `line`.
bool HasLine(std::string_view text, std::string_view line);

// `text` with every line prefixed, for INFO blocks.
std::string Quote(std::string_view text);

}  // namespace mproxy::session_test

// Defines one case twice: as root and as an unprivileged user. `body` is a
// function taking As.
#define SESSION_TEST_CASE(name, body)                                                    \
  TEST_CASE(name " (as root)", "[session]") { body(::mproxy::session_test::As::kRoot); } \
  TEST_CASE(name " (as an unprivileged user)", "[session][user]") {                      \
    body(::mproxy::session_test::As::kUser);                                             \
  }
