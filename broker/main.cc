// mproxy: wires the command line to a connection, an agent link and the
// command to run. Everything else lives in the files it includes.
#include <fcntl.h>
#include <uv.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>

#include "broker/agent_link.h"
#include "broker/cli.h"
#include "broker/connect.h"
#include "broker/exec_command.h"
#include "broker/logging.h"
#include "broker/session.h"
#include "broker/terminal.h"

using namespace mproxy;
using namespace mproxy::broker;

namespace {

int RunPaths(uv_loop_t* loop, AgentLink* link) {
  int status = 255;
  link->QueryPath({}, [&](Result<proto::PathInfo> info) {
    if (!info) {
      std::fprintf(stderr, "mproxy: %s\n", info.error().message().c_str());
    } else if (!info->error.empty() && info->entries.empty()) {
      std::fprintf(stderr, "mproxy: %s: %s\n", link->peer_name().c_str(), info->error.c_str());
      status = 1;
    } else {
      for (const auto& e : info->entries) std::printf("%s\t%s\n", e.name.c_str(), e.path.c_str());
      status = std::fflush(stdout) == 0 ? 0 : 1;
    }
    uv_stop(loop);
  });
  uv_run(loop, UV_RUN_DEFAULT);
  return status;
}

int RunExec(uv_loop_t* loop, AgentLink* link, const CliOptions& o) {
  ExecRequest req;
  req.argv = o.program;
  req.env = ExecCommand::DefaultForwardedEnv();
  req.cwd = o.cwd;
  req.tty = o.force_tty || (!o.no_tty && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO));
  req.host_label = link->peer_name();
  int status = 255;
  ExecCommand cmd(loop, link, req);
  cmd.Start([&](int s) {
    status = s;
    uv_stop(loop);
  });
  uv_run(loop, UV_RUN_DEFAULT);
  return status;
}

// A closed stdin, stdout or stderr would be reused by the next open() or
// pipe(), and bytes meant for a transport pipe would land there. Park
// /dev/null on them, as ssh does: a closed stdin then reads as empty.
void ReserveStdFds() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
      int null = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
      if (null >= 0 && null != fd) {
        dup2(null, fd);
        close(null);
      }
    }
  }
}

int RunProgram(uv_loop_t* loop, AgentLink* link, const CliOptions& o,
               const std::set<int>& inherited, const std::set<int>& ignored_at_start) {
  SessionOptions so;
  so.program = o.program;
  so.workdir = o.cwd;
  so.config = o.config;
  so.host_label = link->peer_name();
  so.inherited_fds = inherited;
  so.program_fd_limit = RaiseFdLimit();
  so.ignored_at_start = ignored_at_start;
  so.connect = o.connect;
  so.connect.allow_prompts = false;
  so.connect.accept_new_host_key = false;  // the key is known by now
  return RunSession(loop, link, so);
}

}  // namespace

int main(int argc, char** argv) {
  ReserveStdFds();
  // Before anything of ours is open: these stay open for the program.
  const std::set<int> inherited = OpenFds();
  std::set<int> ignored_at_start;
  for (int signo : {SIGINT, SIGQUIT}) {
    struct sigaction old {};
    if (sigaction(signo, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) {
      ignored_at_start.insert(signo);
    }
  }
  std::signal(SIGPIPE, SIG_IGN);
  CliOptions opts;
  if (int rc = ParseCommandLine(argc, argv, &opts); rc >= 0) return rc;
  if (auto s = SetupLogging(opts.log_level, opts.log_file); !s) {
    std::fprintf(stderr, "mproxy: %s\n", s.error().message().c_str());
    return 2;
  }

  if (opts.command == CliOptions::Command::kSession && !opts.cwd.empty() &&
      !std::filesystem::is_directory(opts.cwd)) {
    std::fprintf(stderr, "mproxy: -w %s: not a directory here\n", opts.cwd.c_str());
    return 2;
  }
  if (opts.command == CliOptions::Command::kSession &&
      ResolveLocalProgram(opts.program[0]).empty()) {
    std::fprintf(stderr, "mproxy: %s: command not found\n", opts.program[0].c_str());
    return 127;
  }
  auto conn = Connect(opts.connect);
  if (!conn) {
    std::fprintf(stderr, "mproxy: %s\n", conn.error().message().c_str());
    return 255;
  }
  uv_loop_t* loop = uv_default_loop();
  int status = 255;
  {
    AgentLink link(loop, std::move(conn->agent_stream), conn->label);
    bool lost = false;
    link.Start([&](const proto::Hello&) { uv_stop(loop); },
               [&](const Status& why) {
                 lost = true;
                 // Once a command runs, it reports a lost session itself, and
                 // a session's program keeps running without the link.
                 if (!link.ready()) {
                   std::fprintf(stderr, "mproxy: %s\n", why.error().message().c_str());
                   uv_stop(loop);
                 } else if (opts.command != CliOptions::Command::kSession) {
                   uv_stop(loop);
                 }
               });
    uv_run(loop, UV_RUN_DEFAULT);  // until the agent's Hello
    if (!lost && link.ready()) {
      switch (opts.command) {
        case CliOptions::Command::kPaths: status = RunPaths(loop, &link); break;
        case CliOptions::Command::kExec: status = RunExec(loop, &link, opts); break;
        default: status = RunProgram(loop, &link, opts, inherited, ignored_at_start); break;
      }
    }
    RestoreAllTerminals();
  }
  uv_run(loop, UV_RUN_NOWAIT);  // let closed handles free themselves
  if (ReconnectPending()) {
    // A reconnect attempt still blocks in a connect: leave without running
    // destructors under its feet (or waiting for its timeout).
    FlushLogs();
    std::fflush(nullptr);
    _exit(status);
  }
  return status;
}
