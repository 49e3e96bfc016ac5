// Starts and stops scripts/test-sshd.sh and parses the `export` lines it prints.
#include "tests/support/sshd_fixture.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "common/io.h"

extern char** environ;

namespace mproxy::testing {
namespace {

struct ScriptOutput {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `argv` with stdout and stderr captured. posix_spawn, because test
// processes may have threads running.
Result<ScriptOutput> RunCaptured(const std::vector<std::string>& argv) {
  auto out_pipe = MakePipe();
  if (!out_pipe.ok()) return out_pipe.error();
  auto err_pipe = MakePipe();
  if (!err_pipe.ok()) return err_pipe.error();

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe->second.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe->second.get(), 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return Error::FromErrno("posix_spawn " + argv[0], rc);
  out_pipe->second.Reset();
  err_pipe->second.Reset();

  ScriptOutput result;
  // stderr is small (a few diagnostic lines), so reading the two in turn
  // cannot fill a pipe and deadlock.
  auto out = ReadToEof(out_pipe->first.get());
  auto err = ReadToEof(err_pipe->first.get());
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Error::FromErrno("waitpid", errno);
  }
  if (!out.ok()) return out.error();
  if (!err.ok()) return err.error();
  result.out = std::move(*out);
  result.err = std::move(*err);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

// Parses lines of the form: export NAME='value'
std::map<std::string, std::string> ParseExports(const std::string& text) {
  std::map<std::string, std::string> vars;
  std::istringstream in(text);
  std::string line;
  const std::string prefix = "export ";
  while (std::getline(in, line)) {
    if (line.compare(0, prefix.size(), prefix) != 0) continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string name = line.substr(prefix.size(), eq - prefix.size());
    std::string value = line.substr(eq + 1);
    if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'') {
      value = value.substr(1, value.size() - 2);
    }
    vars[name] = value;
  }
  return vars;
}

std::string ScriptPath() {
  if (const char* s = std::getenv("MPROXY_TEST_SSHD_SCRIPT"); s && *s) return s;
  return MPROXY_TEST_SSHD_SCRIPT;
}

}  // namespace

void Skip(const std::string& reason) {
  std::printf("SKIPPED: %s\n", reason.c_str());
  std::fflush(stdout);
  std::fflush(stderr);
  // _Exit: no static destructors run under a test that is still on the stack.
  std::_Exit(kSkipReturnCode);
}

Result<std::unique_ptr<SshdFixture>> SshdFixture::Start(SshdOptions options) {
  std::string script = ScriptPath();
  if (access(script.c_str(), X_OK) != 0) {
    return Error::FromErrno("sshd fixture: cannot run " + script, errno);
  }
  if (access("/usr/sbin/sshd", X_OK) != 0) {
    return Error("sshd fixture: /usr/sbin/sshd is not installed (package openssh-server)");
  }
  char tmpl[] = "/tmp/mproxy-sshd-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return Error::FromErrno("sshd fixture: mkdtemp", errno);

  std::unique_ptr<SshdFixture> f(new SshdFixture());
  f->script_ = script;
  f->dir_ = tmpl;
  std::vector<std::string> argv = {script, "start", f->dir_};
  if (!options.user.empty()) {
    argv.push_back("--user");
    argv.push_back(options.user);
  }
  if (!options.password.empty()) {
    argv.push_back("--password");
    argv.push_back(options.password);
  }
  auto run = RunCaptured(argv);
  if (!run.ok()) return run.error().Wrap("sshd fixture");
  if (run->exit_code != 0) {
    // The destructor removes the directory; nothing is running.
    return Error("sshd fixture: " + script + " start failed (exit " +
                 std::to_string(run->exit_code) + "): " + run->err);
  }
  f->running_ = true;
  auto vars = ParseExports(run->out);
  f->host_ = vars["MPROXY_TEST_SSH_HOST"];
  f->port_ = std::atoi(vars["MPROXY_TEST_SSH_PORT"].c_str());
  f->user_ = vars["MPROXY_TEST_SSH_USER"];
  f->key_path_ = vars["MPROXY_TEST_SSH_KEY"];
  f->known_hosts_path_ = vars["MPROXY_TEST_SSH_KNOWN_HOSTS"];
  f->config_path_ = vars["MPROXY_TEST_SSH_CONFIG"];
  f->alias_ = vars["MPROXY_TEST_SSH_ALIAS"];
  f->host_pub_path_ = vars["MPROXY_TEST_SSH_HOST_KEY_PUB"];
  f->marker_path_ = vars["MPROXY_TEST_SSH_MARKER"];
  f->remote_dir_ = vars["MPROXY_TEST_SSH_REMOTE_DIR"];
  f->log_path_ = vars["MPROXY_TEST_SSH_LOG"];
  if (f->port_ <= 0 || f->host_.empty() || f->user_.empty()) {
    return Error("sshd fixture: cannot parse the output of " + script + " start: " + run->out);
  }
  return f;
}

std::unique_ptr<SshdFixture> SshdFixture::StartOrSkip(SshdOptions options) {
  auto f = Start(std::move(options));
  if (!f.ok()) Skip("cannot start a loopback sshd: " + f.error().message());
  return std::move(f).value();
}

SshdFixture::~SshdFixture() {
  (void)Stop();
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

Status SshdFixture::Stop() {
  if (!running_) return Ok();
  running_ = false;
  auto run = RunCaptured({script_, "stop", dir_});
  if (!run.ok()) return run.error().Wrap("sshd fixture: stop");
  if (run->exit_code != 0) return Error("sshd fixture: stop failed: " + run->err);
  return Ok();
}

Status SshdFixture::Pause() {
  auto run = RunCaptured({script_, "pause", dir_});
  if (!run.ok()) return run.error().Wrap("sshd fixture: pause");
  if (run->exit_code != 0) return Error("sshd fixture: pause failed: " + run->err);
  return Ok();
}

Status SshdFixture::Resume() {
  auto run = RunCaptured({script_, "resume", dir_});
  if (!run.ok()) return run.error().Wrap("sshd fixture: resume");
  if (run->exit_code != 0) return Error("sshd fixture: resume failed: " + run->err);
  return Ok();
}

Status SshdFixture::DropConnections() {
  auto run = RunCaptured({script_, "drop", dir_});
  if (!run.ok()) return run.error().Wrap("sshd fixture: drop");
  if (run->exit_code != 0) return Error("sshd fixture: drop failed: " + run->err);
  return Ok();
}

std::string SshdFixture::LogTail(int lines) const {
  std::ifstream in(log_path_);
  std::vector<std::string> all;
  std::string line;
  while (std::getline(in, line)) all.push_back(line);
  std::string out;
  size_t first = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0;
  for (size_t i = first; i < all.size(); ++i) out += all[i] + "\n";
  return out;
}

}  // namespace mproxy::testing
