// What a user at a terminal meets when a login needs typing: a key file's
// passphrase (named, asked again when mistyped), a password, and the same
// logins refused with a reason when there is no terminal to ask on. Also a
// ProxyCommand from the ssh config. mproxy runs on a real pty here, so
// /dev/tty is that pty, as in a terminal.
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>

#include "tests/e2e/child.h"
#include "tests/e2e/e2e_util.h"
#include "tests/support/sshd_fixture.h"

namespace mproxy::e2e {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::seconds;
using testing::SshdFixture;

constexpr seconds kLimit(60);

// A program on the slave side of a new pty (its controlling terminal), with
// SSH_AUTH_SOCK emptied so no ssh-agent of the machine takes part. Typing
// answers prompts: each time the screen shows one more occurrence of
// `prompt`, the next answer is typed with Enter.
class PtyRun {
 public:
  explicit PtyRun(const std::vector<std::string>& argv) {
    pid_ = forkpty(&master_, nullptr, nullptr, nullptr);
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      setenv("SSH_AUTH_SOCK", "", 1);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~PtyRun() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) close(master_);
  }
  PtyRun(const PtyRun&) = delete;
  PtyRun& operator=(const PtyRun&) = delete;

  // Reads the screen until the program closes the terminal or `kLimit`
  // passes, answering prompts; then reaps it. Returns its exit code (-1:
  // it did not end in time, or died by a signal).
  int Run(const std::string& prompt, std::vector<std::string> answers) {
    const auto deadline = Clock::now() + kLimit;
    size_t answered = 0;
    while (Clock::now() < deadline) {
      pollfd p{master_, POLLIN, 0};
      if (poll(&p, 1, 200) <= 0) continue;
      char buf[4096];
      ssize_t n = read(master_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // EIO: every slave fd is closed
      screen_.append(buf, static_cast<size_t>(n));
      while (answered < answers.size() && CountOf(screen_, prompt) > answered) {
        std::string line = answers[answered++] + "\r";
        REQUIRE(write(master_, line.data(), line.size()) == static_cast<ssize_t>(line.size()));
      }
    }
    int status = 0;
    for (;;) {
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (Clock::now() >= deadline) return -1;
      usleep(10000);
    }
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  const std::string& screen() const { return screen_; }

 private:
  pid_t pid_ = -1;
  int master_ = -1;
  bool reaped_ = false;
  std::string screen_;
};

// `mproxy exec` straight at the fixture's port: no ssh_config, no ssh-agent,
// so only what the test names can log in.
std::vector<std::string> BareExec(const SshdFixture& f, const std::vector<std::string>& opts,
                                  const std::string& echo) {
  std::vector<std::string> argv = {MproxyPath(), "exec", "-F", "none", "-p",
                                   std::to_string(f.port()), "-l", f.user(), "--known-hosts",
                                   f.known_hosts_path()};
  argv.insert(argv.end(), opts.begin(), opts.end());
  argv.insert(argv.end(), {f.host(), "--", "echo", echo});
  return argv;
}

// A key pair protected by `passphrase`, authorised for the fixture's user.
std::string MakeProtectedKey(const SshdFixture& f, const TempDir& tmp,
                             const std::string& passphrase) {
  const std::string key = tmp.path() + "/id_protected";
  Child::Options o;
  o.argv = {"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "protected",
            "-f", key};
  o.stdin_kind = Child::StdinKind::kFile;
  auto gen = Child::Spawn(o)->Communicate("", kLimit);
  REQUIRE(gen.Status() == "exit 0");
  std::ofstream(f.dir() + "/authorized_keys", std::ios::app) << ReadFile(key + ".pub");
  return key;
}

TEST_CASE("a key's passphrase is asked on the terminal, naming the key", "[e2e][prompt]") {
  auto f = SshdFixture::StartOrSkip();
  TempDir tmp;
  const std::string key = MakeProtectedKey(*f, tmp, "correct horse");
  const std::string prompt = "Enter passphrase for key '" + key + "': ";

  SECTION("typed right, the command runs") {
    PtyRun run(BareExec(*f, {"-i", key}, "in with a passphrase"));
    CHECK(run.Run(prompt, {"correct horse"}) == 0);
    CHECK(CountOf(run.screen(), prompt) == 1);
    CHECK(run.screen().find("in with a passphrase\r\n") != std::string::npos);
    CHECK(run.screen().find("correct horse") == std::string::npos);  // not echoed
  }
  SECTION("mistyped once, it is asked again") {
    PtyRun run(BareExec(*f, {"-i", key}, "second try"));
    CHECK(run.Run(prompt, {"wrong", "correct horse"}) == 0);
    CHECK(CountOf(run.screen(), prompt) == 2);
    CHECK(run.screen().find("second try\r\n") != std::string::npos);
  }
  SECTION("mistyped three times, the login fails saying so") {
    PtyRun run(BareExec(*f, {"-i", key}, "never"));
    CHECK(run.Run(prompt, {"wrong", "wrong again", "still wrong"}) == 255);
    CHECK(CountOf(run.screen(), prompt) == 3);
    CHECK(run.screen().find("never") == std::string::npos);
    CHECK(run.screen().find("mproxy: ssh: authentication as " + f->user() + "@") !=
          std::string::npos);
    CHECK(run.screen().find(key + ": wrong passphrase") != std::string::npos);
  }
  SECTION("with no terminal, nothing is asked and the error says why") {
    Child::Options o;
    o.argv = BareExec(*f, {"-i", key}, "never");
    o.stdin_kind = Child::StdinKind::kFile;
    o.extra_env = {"SSH_AUTH_SOCK="};
    // setsid: no controlling terminal even when ctest itself has one.
    o.argv.insert(o.argv.begin(), "/usr/bin/setsid");
    auto r = Child::Spawn(o)->Communicate("", kLimit);
    CHECK(r.Status() == "exit 255");
    CHECK(r.out == "");
    CHECK(r.err.find(key + ": unreadable, or needs a passphrase and there is no terminal to ask "
                           "on") != std::string::npos);
  }
}

TEST_CASE("a key named with -i that does not exist is named in the error", "[e2e][prompt]") {
  auto f = SshdFixture::StartOrSkip();
  Child::Options o;
  o.argv = BareExec(*f, {"-i", "/nonexistent/id_key"}, "never");
  o.stdin_kind = Child::StdinKind::kFile;
  o.extra_env = {"SSH_AUTH_SOCK="};
  auto r = Child::Spawn(o)->Communicate("", kLimit);
  CHECK(r.Status() == "exit 255");
  CHECK(r.err.find("/nonexistent/id_key: No such file or directory") != std::string::npos);
}

TEST_CASE("a password is asked on the terminal, and again when mistyped", "[e2e][prompt]") {
  if (geteuid() != 0) testing::Skip("setting an account's password needs root");
  testing::SshdOptions opts;
  opts.user = "mproxy-pw";
  opts.password = "pw Sekrit-1";
  auto f = SshdFixture::StartOrSkip(opts);
  const std::string prompt =
      f->user() + "@" + f->host() + ":" + std::to_string(f->port()) + "'s password: ";

  SECTION("typed right, the command runs") {
    PtyRun run(BareExec(*f, {}, "in with a password"));
    CHECK(run.Run(prompt, {"pw Sekrit-1"}) == 0);
    CHECK(CountOf(run.screen(), prompt) == 1);
    CHECK(run.screen().find("in with a password\r\n") != std::string::npos);
    CHECK(run.screen().find("Sekrit") == std::string::npos);  // not echoed
  }
  SECTION("mistyped, it is asked again; three times wrong fails") {
    PtyRun again(BareExec(*f, {}, "second try"));
    CHECK(again.Run(prompt, {"nope", "pw Sekrit-1"}) == 0);
    CHECK(CountOf(again.screen(), prompt) == 2);
    CHECK(again.screen().find("Permission denied, please try again.") != std::string::npos);
    CHECK(again.screen().find("second try\r\n") != std::string::npos);

    PtyRun wrong(BareExec(*f, {}, "never"));
    CHECK(wrong.Run(prompt, {"a", "b", "c"}) == 255);
    CHECK(CountOf(wrong.screen(), prompt) == 3);
    CHECK(wrong.screen().find("never") == std::string::npos);
    CHECK(wrong.screen().find("tried: public keys") != std::string::npos);
    CHECK(wrong.screen().find("password") != std::string::npos);
  }
  SECTION("with no terminal, the password is not asked and the error says why") {
    Child::Options o;
    o.argv = BareExec(*f, {}, "never");
    o.argv.insert(o.argv.begin(), "/usr/bin/setsid");
    o.stdin_kind = Child::StdinKind::kFile;
    o.extra_env = {"SSH_AUTH_SOCK="};
    auto r = Child::Spawn(o)->Communicate("", kLimit);
    CHECK(r.Status() == "exit 255");
    CHECK(r.err.find("skipped password (no terminal to ask on)") != std::string::npos);
    CHECK(r.err.find("the server accepts: publickey, password") != std::string::npos);
  }
}

TEST_CASE("a ProxyCommand from the ssh config carries the connection", "[e2e][prompt]") {
  auto f = SshdFixture::StartOrSkip();
  TempDir tmp;
  // The proxy is OpenSSH itself, forwarding through the same sshd: the
  // remote command then sees its client as sshd's own forwarded connection.
  const std::string config = tmp.path() + "/ssh_config";
  std::ofstream(config) << "Host via-proxy\n"
                        << "  HostName " << f->host() << "\n"
                        << "  Port " << f->port() << "\n"
                        << "  User " << f->user() << "\n"
                        << "  IdentityFile " << f->key_path() << "\n"
                        << "  UserKnownHostsFile " << f->known_hosts_path() << "\n"
                        << "  ProxyCommand /usr/bin/ssh -F " << f->config_path() << " -W %h:%p "
                        << f->alias() << "\n";
  // Without a private mount namespace there is no marker to prove the side.
  const std::string where =
      f->marker_path().empty() ? "echo remote" : "test -e " + f->marker_path() + " && echo remote";
  Child::Options o;
  o.argv = {MproxyPath(), "exec", "-F", config, "via-proxy", "--", "sh", "-c", where};
  o.stdin_kind = Child::StdinKind::kFile;
  auto r = Child::Spawn(o)->Communicate("", kLimit);
  CHECK(r.Status() == "exit 0");
  CHECK(r.out == "remote\n");
  CHECK(r.err == "");
}

}  // namespace
}  // namespace mproxy::e2e
