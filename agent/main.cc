// mproxy-agent: runs on the remote host, speaks the mproxy protocol on
// stdin/stdout. This file only parses flags and wires the session to a loop.
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "agent/log.h"
#include "agent/session.h"

#ifndef MPROXY_VERSION
#define MPROXY_VERSION "unknown"
#endif

namespace {

constexpr char kUsage[] =
    "usage: mproxy-agent [--log-level trace|debug|info|warn|error|off] [--version]\n"
    "Speaks the mproxy protocol on stdin/stdout; started by mproxy, not by hand.\n"
    "MPROXY_AGENT_LOG=<level> also enables diagnostics on stderr.\n";

// Makes every fd above stderr that the agent inherited close-on-exec, so a
// child gets exactly the fds its Exec names. /proc is used when mounted;
// otherwise every number up to the fd limit is tried.
void CloseOnExecInherited() {
  if (DIR* d = opendir("/proc/self/fd")) {
    int dir_fd = dirfd(d);
    while (struct dirent* e = readdir(d)) {
      int fd = atoi(e->d_name);
      if (fd > 2 && fd != dir_fd) fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    closedir(d);
    return;
  }
  struct rlimit rl {};
  rlim_t max = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
  if (max > 65536) max = 65536;
  for (int fd = 3; fd < static_cast<int>(max); ++fd) fcntl(fd, F_SETFD, FD_CLOEXEC);
}

bool SetLevel(std::string_view name) {
  auto level = mproxy::agent::ParseLogLevel(name);
  if (!level) {
    fprintf(stderr, "mproxy-agent: unknown log level '%.*s'\n%s", static_cast<int>(name.size()),
            name.data(), kUsage);
    return false;
  }
  mproxy::agent::SetLogLevel(*level);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using mproxy::agent::kExitProtocol;
  if (const char* env = getenv("MPROXY_AGENT_LOG"); env != nullptr && *env != '\0') {
    if (!SetLevel(env)) return kExitProtocol;
  }
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--version") {
      printf("mproxy-agent %s\n", MPROXY_VERSION);
      return 0;
    }
    if (arg == "--help" || arg == "-h") {
      fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--log-level" && i + 1 < argc) {
      if (!SetLevel(argv[++i])) return kExitProtocol;
      continue;
    }
    if (arg.substr(0, 12) == "--log-level=") {
      if (!SetLevel(arg.substr(12))) return kExitProtocol;
      continue;
    }
    fprintf(stderr, "mproxy-agent: unknown argument '%s'\n%s", argv[i], kUsage);
    return kExitProtocol;
  }

  // A peer or child that goes away must show up as EPIPE, not kill us.
  signal(SIGPIPE, SIG_IGN);
  CloseOnExecInherited();

  mproxy::agent::SessionOptions options;
  options.program_version = MPROXY_VERSION;
  const char* path = getenv("PATH");
  options.fallback_path = path != nullptr && *path != '\0' ? path : "/usr/local/bin:/usr/bin:/bin";

  uv_loop_t loop;
  if (int rc = uv_loop_init(&loop); rc < 0) {
    fprintf(stderr, "mproxy-agent: uv_loop_init: %s\n", uv_strerror(rc));
    return 1;
  }
  int code;
  {
    mproxy::agent::Session session(&loop, options);
    (void)session.Start();  // a failure ends the session and says why
    uv_run(&loop, UV_RUN_DEFAULT);
    code = session.exit_code();
  }
  if (uv_loop_close(&loop) != 0) {
    mproxy::agent::Logf(mproxy::agent::LogLevel::kWarn, "loop closed with handles left");
  }
  return code;
}
