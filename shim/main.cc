// mproxy-shim: the program behind every command stub of an mproxy session.
// Started under a command's name, it runs that command remotely through the
// broker at $MPROXY_SOCK; under its own name it only explains itself.
#include <sys/auxv.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <string_view>

#include "common/io.h"
#include "shim/session.h"

extern char** environ;

namespace {

constexpr std::string_view kOwnName = "mproxy-shim";

constexpr std::string_view kHelp =
    "mproxy-shim: the stand-in for remote commands in an mproxy session.\n"
    "\n"
    "Every entry of the session's command-stub directory runs this program under\n"
    "the command's name. It hands its arguments, environment, working directory\n"
    "and open file descriptors to the mproxy broker named by $MPROXY_SOCK, which\n"
    "runs the command on the remote host; the shim then exits with the remote\n"
    "command's status, or dies of the same signal. It is not meant to be run by\n"
    "hand: see mproxy(1).\n";

std::string_view Basename(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

void Say(int fd, std::string_view text) { static_cast<void>(mproxy::WriteAll(fd, text)); }

int RunAsItself(int argc, char** argv) {
  std::string_view arg = argc == 2 ? argv[1] : "";
  if (arg == "--help" || arg == "-h") {
    Say(1, kHelp);
    return 0;
  }
  if (arg == "--version") {
    Say(1, std::string(kOwnName) + " " + MPROXY_VERSION + "\n");
    return 0;
  }
  Say(2,
      "mproxy-shim: usage: mproxy-shim --help | --version (it runs as the stub of a remote "
      "command)\n");
  return 2;
}

std::string CurrentDirectory() {
  char* cwd = ::getcwd(nullptr, 0);
  if (cwd == nullptr) return std::string();
  std::string s(cwd);
  std::free(cwd);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const auto* execfn = reinterpret_cast<const char*>(::getauxval(AT_EXECFN));
  std::string exe = execfn != nullptr ? execfn : "";
  std::string_view argv0 = argc > 0 && argv[0] != nullptr ? argv[0] : "";
  std::string name(Basename(!exe.empty() ? std::string_view(exe) : argv0));
  if (name.empty()) name = Basename(argv0);
  if (name == kOwnName) return RunAsItself(argc, argv);
  if (name.empty()) name = kOwnName;

  const char* sock = std::getenv("MPROXY_SOCK");
  if (sock == nullptr || *sock == '\0') {
    Say(2, "mproxy: " + name + ": not inside an mproxy session (MPROXY_SOCK is not set)\n");
    return mproxy::shim::kExitSessionError;
  }

  mproxy::shim::Invocation inv;
  inv.name = std::move(name);
  inv.socket_path = sock;
  inv.request.exe = std::move(exe);
  inv.request.argv.assign(argv, argv + argc);
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) inv.request.env.emplace_back(*e);
  inv.request.cwd = CurrentDirectory();
  mproxy::shim::Run(std::move(inv));
}
