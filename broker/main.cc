// mproxy: wires the command line to a connection, an agent link and the
// command to run. Everything else lives in the files it includes.
#include <fcntl.h>
#include <uv.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <memory>

#include "broker/agent_link.h"
#include "broker/cli.h"
#include "broker/connect.h"
#include "broker/exec_command.h"
#include "broker/logging.h"
#include "broker/terminal.h"

using namespace mproxy;
using namespace mproxy::broker;

namespace {

const char* LevelFor(const CliOptions& o) {
  switch (o.verbose) {
    case 0: return o.log_level.c_str();
    case 1: return "info";
    case 2: return "debug";
    default: return "trace";
  }
}

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

}  // namespace

int main(int argc, char** argv) {
  ReserveStdFds();
  std::signal(SIGPIPE, SIG_IGN);
  CliOptions opts;
  if (int rc = ParseCommandLine(argc, argv, &opts); rc >= 0) return rc;
  if (auto s = SetupLogging(LevelFor(opts), opts.log_file); !s) {
    std::fprintf(stderr, "mproxy: %s\n", s.error().message().c_str());
    return 2;
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
                 // Once a command runs, it reports a lost session itself.
                 if (!link.ready()) std::fprintf(stderr, "mproxy: %s\n", why.error().message().c_str());
                 uv_stop(loop);
               });
    uv_run(loop, UV_RUN_DEFAULT);  // until the agent's Hello
    if (!lost && link.ready()) {
      status = opts.command == CliOptions::Command::kPaths ? RunPaths(loop, &link)
                                                           : RunExec(loop, &link, opts);
    }
    RestoreAllTerminals();
  }
  uv_run(loop, UV_RUN_NOWAIT);  // let closed handles free themselves
  return status;
}
