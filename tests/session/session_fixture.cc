// SessionFixture: the sshd, the account that runs mproxy, and the checks
// that decide whether a session can run here at all.
#include "tests/session/session_fixture.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <sstream>
#include <thread>

#include "tests/e2e/e2e_util.h"

namespace mproxy::session_test {
namespace {

using std::chrono::seconds;
using testing::Skip;
using Clock = std::chrono::steady_clock;

// The account the unprivileged variant creates when the test runs as root.
constexpr char kTestUser[] = "mproxy-session";
constexpr char kPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::string ShellQuote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  return out + "'";
}

void RequireProgram(const char* path, const char* package) {
  if (access(path, X_OK) != 0) {
    Skip(std::string(path) + " is missing (package " + package + ")");
  }
}

// Runs a root-only setup command; a failure is a failed test, not a skip,
// except where the caller says otherwise.
Child::Result RunShell(const std::string& script) {
  return e2e::Run({"/bin/sh", "-c", script}, seconds(60));
}

}  // namespace

SessionFixture::SessionFixture(As as) : as_(as) {
  const bool root = geteuid() == 0;
  if (as == As::kRoot && !root) {
    Skip("not running as root; the unprivileged variant of this case runs as this user");
  }
  RequireProgram("/usr/bin/setsid", "util-linux");
  RequireProgram("/usr/bin/env", "coreutils");
  RequireProgram("/usr/bin/ssh", "openssh-client");
  RequireProgram("/usr/bin/pgrep", "procps");

  // Everything that may Skip() comes before sshd starts: Skip() ends the
  // process at once, and a running sshd would outlive it.
  if (as == As::kUser && root) {
    CreateUser();
  } else {
    uid_ = geteuid();
    struct passwd* pw = getpwuid(uid_);
    REQUIRE(pw != nullptr);
    user_ = pw->pw_name;
    home_ = pw->pw_dir;
    gid_ = pw->pw_gid;
  }
  CheckFuse();
  CheckBwrap();

  sshd_ = testing::SshdFixture::StartOrSkip();
  if (marker().empty()) {
    sshd_.reset();
    Skip(
        "the loopback sshd runs without a mount namespace here, so no file proves where a "
        "command ran");
  }
  if (switch_user_) {
    GiveUserTheKey();
  } else {
    connect_opts_ = {"-F", sshd_->config_path()};
    target_ = sshd_->alias();
  }

  char tmpl[] = "/tmp/mproxy-session-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  scratch_ = tmpl;
  REQUIRE(chmod(scratch_.c_str(), 0755) == 0);
  GiveToUser(scratch_);
}

SessionFixture::~SessionFixture() {
  std::error_code ec;
  if (!scratch_.empty()) std::filesystem::remove_all(scratch_, ec);
  if (!ssh_dir_.empty()) std::filesystem::remove_all(ssh_dir_, ec);
}

// Creates the account once per machine, serialised like test-sshd.sh does.
void SessionFixture::CreateUser() {
  RequireProgram("/usr/bin/setpriv", "util-linux");
  RequireProgram("/usr/sbin/useradd", "passwd");
  auto made = RunShell(std::string("exec 9>/run/lock/mproxy-session-user.lock && flock 9 && ") +
                       "{ getent passwd " + kTestUser + " >/dev/null || useradd -m -s /bin/bash " +
                       kTestUser + "; } && usermod -p '*' " + kTestUser);
  INFO(made.err);
  REQUIRE(made.Status() == "exit 0");
  struct passwd* pw = getpwnam(kTestUser);
  REQUIRE(pw != nullptr);
  uid_ = pw->pw_uid;
  gid_ = pw->pw_gid;
  user_ = kTestUser;
  home_ = pw->pw_dir;
  switch_user_ = true;
}

// Gives the created account this fixture's key and known_hosts under its own
// ~/.ssh; it reaches the sshd with -i/--known-hosts/-p/-l, no ssh_config.
void SessionFixture::GiveUserTheKey() {
  // One directory per fixture (ports differ), so parallel cases never share
  // files: ~/.ssh/mproxy-session-PORT/{id_ed25519,known_hosts}.
  const std::string dot_ssh = home_ + "/.ssh";
  std::filesystem::create_directories(dot_ssh);
  REQUIRE(chmod(dot_ssh.c_str(), 0700) == 0);
  GiveToUser(dot_ssh);
  ssh_dir_ = dot_ssh + "/mproxy-session-" + std::to_string(sshd_->port());
  std::filesystem::create_directories(ssh_dir_);
  REQUIRE(chmod(ssh_dir_.c_str(), 0700) == 0);
  GiveToUser(ssh_dir_);
  const std::string key = ssh_dir_ + "/id_ed25519";
  const std::string known_hosts = ssh_dir_ + "/known_hosts";
  e2e::WriteFile(key, e2e::ReadFile(sshd_->key_path()));
  e2e::WriteFile(known_hosts, e2e::ReadFile(sshd_->known_hosts_path()));
  REQUIRE(chmod(key.c_str(), 0600) == 0);
  REQUIRE(chmod(known_hosts.c_str(), 0644) == 0);
  GiveToUser(key);
  GiveToUser(known_hosts);

  connect_opts_ = {"-i",        key,          "--known-hosts",
                   known_hosts, "-p",         std::to_string(sshd_->port()),
                   "-l",        sshd_->user()};
  target_ = sshd_->host();
}

void SessionFixture::CheckFuse() const {
  struct stat st;
  if (stat("/dev/fuse", &st) != 0)
    Skip("/dev/fuse is missing: no FUSE for the path-stub directory");
  if (uid_ != 0) {
    RequireProgram("/usr/bin/fusermount3", "fuse3");
    // Debian ships /dev/fuse 0600 in some containers; unprivileged mounts
    // need it 0666 (fusermount3 is setuid and does the rest).
    if ((st.st_mode & 0666) != 0666 && geteuid() == 0) chmod("/dev/fuse", 0666);
  }
  auto open = e2e::Run(AsUser({"/bin/sh", "-c", "exec 3<>/dev/fuse"}), seconds(30));
  if (open.Status() != "exit 0") {
    Skip("/dev/fuse cannot be opened by " + user_ + ": " + open.err);
  }
}

void SessionFixture::CheckBwrap() const {
  if (access("/usr/bin/bwrap", X_OK) != 0) {
    Skip("bwrap is missing (package bubblewrap); mproxy would warn and run without a namespace");
  }
  std::vector<std::string> probe = {"bwrap", "--die-with-parent"};
  if (uid_ != 0) probe.push_back("--unshare-user");
  for (const char* a : {"--dev-bind", "/", "/", "--", "/bin/true"}) probe.push_back(a);
  auto r = e2e::Run(AsUser(probe), seconds(30));
  if (r.Status() != "exit 0") {
    Skip("bwrap cannot create a namespace for " + user_ +
         (uid_ != 0 ? " (needs unprivileged user namespaces)" : "") + ": " + r.err);
  }
}

std::string SessionFixture::MarkerText() const {
  return "mproxy remote side, port " + std::to_string(sshd_->port()) + "\n";
}

std::vector<std::string> SessionFixture::AsUser(const std::vector<std::string>& cmd,
                                                const std::vector<std::string>& env) const {
  std::vector<std::string> argv = {"/usr/bin/setsid"};
  if (switch_user_) {
    argv.insert(argv.end(), {"/usr/bin/setpriv", "--reuid=" + std::to_string(uid_),
                             "--regid=" + std::to_string(gid_), "--init-groups"});
  }
  argv.insert(argv.end(),
              {"/usr/bin/env", "-i", "-C", "/", std::string("PATH=") + kPath, "HOME=" + home_,
               "USER=" + user_, "LOGNAME=" + user_, "SHELL=/bin/bash", "LANG=C.UTF-8",
               "OUTER_ONLY=set-outside", "MPROXY_AGENT_BUNDLE=" + e2e::BundleDir(), "M=" + marker(),
               "T=" + scratch_});
  argv.insert(argv.end(), env.begin(), env.end());
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  return argv;
}

std::vector<std::string> SessionFixture::MproxyCommand(const std::vector<std::string>& program,
                                                       const std::vector<std::string>& opts) const {
  // The connection options go last: each takes exactly one value, so the
  // target cannot be taken for another value of a repeatable option in
  // `opts` (that order has a case of its own).
  std::vector<std::string> cmd = {e2e::MproxyPath()};
  cmd.insert(cmd.end(), opts.begin(), opts.end());
  cmd.insert(cmd.end(), connect_opts_.begin(), connect_opts_.end());
  cmd.insert(cmd.end(), {target_, "--"});
  cmd.insert(cmd.end(), program.begin(), program.end());
  return cmd;
}

std::vector<std::string> SessionFixture::Mproxy(const std::vector<std::string>& program,
                                                const std::vector<std::string>& opts,
                                                const std::vector<std::string>& env) const {
  return AsUser(MproxyCommand(program, opts), env);
}

std::vector<std::string> SessionFixture::Paths() const {
  std::vector<std::string> cmd = {e2e::MproxyPath(), "paths"};
  cmd.insert(cmd.end(), connect_opts_.begin(), connect_opts_.end());
  cmd.push_back(target_);
  return AsUser(cmd);
}

std::vector<std::string> SessionFixture::MproxyBash(const std::string& script,
                                                    const std::vector<std::string>& opts) const {
  return Mproxy({"bash", "-c", script}, opts);
}

Child::Result SessionFixture::Bash(const std::string& script, const std::vector<std::string>& opts,
                                   std::string input) const {
  Child::Options o;
  o.argv = MproxyBash(script, opts);
  return Child::Spawn(o)->Communicate(std::move(input), kLimit);
}

std::unique_ptr<Child> SessionFixture::SpawnBash(const std::string& script,
                                                 const std::vector<std::string>& opts) const {
  Child::Options o;
  o.argv = MproxyBash(script, opts);
  o.stdin_kind = Child::StdinKind::kFile;
  return Child::Spawn(o);
}

Child::Result SessionFixture::Remote(const std::string& script) const {
  return e2e::Run({"/usr/bin/ssh", "-F", sshd_->config_path(), sshd_->alias(), script},
                  seconds(60));
}

Child::Result SessionFixture::InRemoteNamespace(const std::string& script) const {
  if (geteuid() != 0) SkipNow("entering the sshd's mount namespace needs root");
  RequireProgram("/usr/bin/nsenter", "util-linux");
  std::string pid = e2e::ReadFile(sshd_->dir() + "/sshd.pid");
  while (!pid.empty() && pid.back() == '\n') pid.pop_back();
  REQUIRE(!pid.empty());
  return e2e::Run({"/usr/bin/nsenter", "-m", "-t", pid, "--", "/bin/sh", "-c", script},
                  seconds(60));
}

std::vector<pid_t> SessionFixture::RemotePids(const std::string& pattern) const {
  // --ns $$ --nslist mnt: only processes in the remote shell's (the sshd's)
  // mount namespace; the local shims have the same command lines.
  auto r = Remote("pgrep --ns $$ --nslist mnt -f -- " + ShellQuote(pattern));
  INFO("remote pgrep: " << r.Status() << "\n" << r.err);
  REQUIRE((r.Status() == "exit 0" || r.Status() == "exit 1"));
  std::vector<pid_t> pids;
  std::istringstream in(r.out);
  for (long pid; in >> pid;) pids.push_back(static_cast<pid_t>(pid));
  return pids;
}

bool SessionFixture::WaitForRemote(const std::string& pattern, std::chrono::seconds limit) const {
  const auto deadline = Clock::now() + limit;
  while (RemotePids(pattern).empty()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

bool SessionFixture::WaitForNoRemote(const std::string& pattern, std::chrono::seconds limit) const {
  const auto deadline = Clock::now() + limit;
  while (!RemotePids(pattern).empty()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

void SessionFixture::GiveToUser(const std::string& path) const {
  if (!switch_user_) return;
  INFO("chown " << path);
  REQUIRE(chown(path.c_str(), uid_, gid_) == 0);
}

void SessionFixture::SkipNow(const std::string& reason) const {
  std::error_code ec;
  if (!scratch_.empty()) std::filesystem::remove_all(scratch_, ec);
  if (!ssh_dir_.empty()) std::filesystem::remove_all(ssh_dir_, ec);
  if (sshd_) {
    (void)sshd_->Stop();
    std::filesystem::remove_all(sshd_->dir(), ec);
  }
  Skip(reason);
}

std::string SessionFixture::Diagnostics() const {
  return "running as " + user_ + " (uid " + std::to_string(uid_) + "), mproxy target " + target_;
}

std::vector<pid_t> FindShims(const std::vector<std::string>& argv) {
  std::vector<pid_t> shims;
  for (pid_t pid : e2e::FindProcesses(argv)) {
    std::string env = e2e::ReadFile("/proc/" + std::to_string(pid) + "/environ");
    if (env.rfind("MPROXY_SOCK=", 0) == 0 ||
        env.find(std::string_view("\0MPROXY_SOCK=", 13)) != std::string::npos) {
      shims.push_back(pid);
    }
  }
  return shims;
}

pid_t WaitForShim(const std::vector<std::string>& argv, std::chrono::seconds limit) {
  const auto deadline = Clock::now() + limit;
  for (;;) {
    auto shims = FindShims(argv);
    if (shims.size() == 1) return shims[0];
    if (Clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

bool HasLine(std::string_view text, std::string_view line) {
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view l = text.substr(0, nl);
    while (!l.empty() && (l.back() == ' ' || l.back() == '\r')) l.remove_suffix(1);
    if (l == line) return true;
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return false;
}

std::string Quote(std::string_view text) {
  std::string out;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) out += "  | " + line + "\n";
  return out;
}

}  // namespace mproxy::session_test
