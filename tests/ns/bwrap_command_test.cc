// Golden vectors for the bwrap argv and the entrypoint's environment.
#include "ns/bwrap_command.h"

#include <catch2/catch.hpp>

#include "ns/bwrap_probe.h"

namespace mproxy::ns {
namespace {

using Argv = std::vector<std::string>;

// The argv vectors below are laid out one bwrap option per line.
// clang-format off

NamespaceSpec BasicSpec() {
  NamespaceSpec spec;
  spec.bwrap_path = "/usr/bin/bwrap";
  spec.stub_dir = "/run/user/1000/mproxy-1/bin";
  spec.cwd = "/home/alice/proj";
  spec.socket_path = "/run/user/1000/mproxy-1/sock";
  spec.host = "build-box";
  spec.session_id = "s1";
  spec.program = {"claude", "--resume"};
  return spec;
}

TEST_CASE("as root the argv binds the host root with devices and needs no user namespace",
          "[ns]") {
  NamespaceSpec spec = BasicSpec();
  spec.mounts = {{"/run/user/1000/mproxy-1/ws0", "/home/alice/proj"}};
  CHECK(BuildBwrapArgv(spec) == Argv{"/usr/bin/bwrap", "--die-with-parent",
                                     "--dev-bind", "/", "/",
                                     "--bind", "/run/user/1000/mproxy-1/ws0", "/home/alice/proj",
                                     "--chdir", "/home/alice/proj",
                                     "--", "claude", "--resume"});
  CHECK(CheckNamespaceSpec(spec).ok());
}

TEST_CASE("with an info fd bwrap is asked to report the program's pid on it", "[ns]") {
  NamespaceSpec spec = BasicSpec();
  spec.unshare_user = true;
  spec.info_fd = 5;
  CHECK(BuildBwrapArgv(spec) == Argv{"/usr/bin/bwrap", "--die-with-parent", "--info-fd", "5",
                                     "--unshare-user", "--dev-bind", "/", "/",
                                     "--chdir", "/home/alice/proj",
                                     "--", "claude", "--resume"});
}

TEST_CASE("the program's pid is read from bwrap's report only once it is complete", "[ns]") {
  const std::string report = "{\n    \"child-pid\": 26406,\n    \"mnt-namespace\": 4026532178\n}\n";
  CHECK(ParseBwrapChildPid(report) == 26406);
  CHECK(ParseBwrapChildPid("{\"child-pid\":7}") == 7);
  // Cut anywhere inside the number or before it: not yet.
  for (size_t n = 0; n <= report.find("26406") + 5; ++n) {
    INFO("first " << n << " bytes");
    CHECK(ParseBwrapChildPid(report.substr(0, n)) == std::nullopt);
  }
  CHECK(ParseBwrapChildPid("") == std::nullopt);
  CHECK(ParseBwrapChildPid("{\"child-pid\": -3}") == std::nullopt);
  CHECK(ParseBwrapChildPid("{\"child-pid\": 0,") == std::nullopt);
  CHECK(ParseBwrapChildPid("{\"child-pid\": 99999999999999}") == std::nullopt);
  CHECK(ParseBwrapChildPid("{\"child-pid\" \"x\": 5}") == std::nullopt);
  CHECK(ParseBwrapChildPid("{\"mnt-namespace\": 4026532178}") == std::nullopt);
}

TEST_CASE("unprivileged the argv asks bwrap for a user namespace", "[ns]") {
  NamespaceSpec spec = BasicSpec();
  spec.unshare_user = true;
  CHECK(BuildBwrapArgv(spec) == Argv{"/usr/bin/bwrap", "--die-with-parent", "--unshare-user",
                                     "--dev-bind", "/", "/",
                                     "--chdir", "/home/alice/proj",
                                     "--", "claude", "--resume"});
}

TEST_CASE("nested mounts are bound parent first whatever order they were given in", "[ns]") {
  NamespaceSpec spec = BasicSpec();
  spec.cwd.clear();
  spec.program = {"sh"};
  spec.mounts = {{"/ws/c", "/a/b/c/"},
                 {"/ws/a", "/a"},
                 {"/ws/x", "/x"},
                 {"/ws/b", "//a/b"}};
  CHECK(BuildBwrapArgv(spec) == Argv{"/usr/bin/bwrap", "--die-with-parent",
                                     "--dev-bind", "/", "/",
                                     "--bind", "/ws/a", "/a",
                                     "--bind", "/ws/x", "/x",
                                     "--bind", "/ws/b", "//a/b",
                                     "--bind", "/ws/c", "/a/b/c/",
                                     "--", "sh"});
}

TEST_CASE("a stub dir at another host path is bound read-only in mount order", "[ns]") {
  NamespaceSpec spec = BasicSpec();
  spec.stub_dir = "/opt/mproxy/bin";
  spec.stub_dir_source = "/run/user/1000/mproxy-1/bin";
  spec.mounts = {{"/run/user/1000/mproxy-1/ws0", "/opt"}};
  spec.program = {"--weird-name"};
  CHECK(BuildBwrapArgv(spec) == Argv{"/usr/bin/bwrap", "--die-with-parent",
                                     "--dev-bind", "/", "/",
                                     "--bind", "/run/user/1000/mproxy-1/ws0", "/opt",
                                     "--ro-bind", "/run/user/1000/mproxy-1/bin", "/opt/mproxy/bin",
                                     "--chdir", "/home/alice/proj",
                                     "--", "--weird-name"});
  // The same path on both sides needs no bind at all.
  spec.stub_dir_source = spec.stub_dir;
  spec.mounts.clear();
  CHECK(BuildBwrapArgv(spec) == Argv{"/usr/bin/bwrap", "--die-with-parent",
                                     "--dev-bind", "/", "/",
                                     "--chdir", "/home/alice/proj",
                                     "--", "--weird-name"});
}

TEST_CASE("paths with spaces stay single arguments", "[ns]") {
  NamespaceSpec spec = BasicSpec();
  spec.mounts = {{"/run/my ws", "/home/alice/My Project"}};
  spec.cwd = "/home/alice/My Project/sub dir";
  spec.program = {"sh", "-c", "echo a b"};
  CHECK(BuildBwrapArgv(spec) == Argv{"/usr/bin/bwrap", "--die-with-parent",
                                     "--dev-bind", "/", "/",
                                     "--bind", "/run/my ws", "/home/alice/My Project",
                                     "--chdir", "/home/alice/My Project/sub dir",
                                     "--", "sh", "-c", "echo a b"});
  CHECK(CheckNamespaceSpec(spec).ok());
}

// clang-format on

TEST_CASE("specs bwrap would misread are refused with the reason", "[ns]") {
  NamespaceSpec spec = BasicSpec();
  spec.program.clear();
  CHECK(CheckNamespaceSpec(spec).error().message() == "namespace: no program to run");
  spec = BasicSpec();
  spec.mounts = {{"ws", "/a"}};
  CHECK(CheckNamespaceSpec(spec).error().message() ==
        "namespace: mount 'ws' on '/a': both paths must be absolute");
  spec.mounts = {{"/ws", "/"}};
  CHECK(CheckNamespaceSpec(spec).error().message() == "namespace: cannot mount '/ws' over /");
  spec.mounts = {{"/ws1", "/a/b"}, {"/ws2", "/a//b/"}};
  CHECK(CheckNamespaceSpec(spec).error().message() == "namespace: two mounts on '/a/b'");
  spec.mounts.clear();
  spec.cwd = "proj";
  CHECK(CheckNamespaceSpec(spec).error().message() ==
        "namespace: working directory 'proj' is not absolute");
}

TEST_CASE("PATH gets the stub dir first, last or not at all", "[ns]") {
  const std::string stub = "/run/s/bin";
  CHECK(InjectPath("/usr/bin:/bin", stub, PathInjection::kPrepend) == "/run/s/bin:/usr/bin:/bin");
  CHECK(InjectPath("/usr/bin:/bin", stub, PathInjection::kAppend) == "/usr/bin:/bin:/run/s/bin");
  CHECK(InjectPath("/usr/bin:/bin", stub, PathInjection::kOff) == "/usr/bin:/bin");
  // An existing copy (a nested session, a user's rc file) is moved, not doubled.
  CHECK(InjectPath("/run/s/bin/:/usr/bin:/run/s/bin", stub, PathInjection::kPrepend) ==
        "/run/s/bin:/usr/bin");
  CHECK(InjectPath("/run/s/bin", stub, PathInjection::kAppend) == "/run/s/bin");
  // Empty elements mean the current directory and keep that meaning.
  CHECK(InjectPath("", stub, PathInjection::kPrepend) == "/run/s/bin:");
  CHECK(InjectPath("/bin::/usr/bin", stub, PathInjection::kAppend) == "/bin::/usr/bin:/run/s/bin");
  // No stub dir: nothing to inject.
  CHECK(InjectPath("/bin", "", PathInjection::kPrepend) == "/bin");
}

TEST_CASE("a missing PATH starts from the default one unless injection is off", "[ns]") {
  const std::string stub = "/run/s/bin";
  CHECK(InjectPath(std::nullopt, stub, PathInjection::kPrepend) ==
        "/run/s/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  CHECK(InjectPath(std::nullopt, stub, PathInjection::kAppend) ==
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/run/s/bin");
  CHECK(InjectPath(std::nullopt, stub, PathInjection::kOff) == std::nullopt);

  NamespaceSpec spec = BasicSpec();
  spec.path_injection = PathInjection::kOff;
  CHECK(BuildEnv({"HOME=/home/alice"}, spec) == Argv{"HOME=/home/alice",
                                                     "MPROXY_SOCK=/run/user/1000/mproxy-1/sock",
                                                     "MPROXY_STUB_DIR=/run/user/1000/mproxy-1/bin",
                                                     "MPROXY_HOST=build-box", "MPROXY_SESSION=s1"});
  spec.path_injection = PathInjection::kPrepend;
  CHECK(BuildEnv({"HOME=/home/alice"}, spec) ==
        Argv{"HOME=/home/alice",
             "PATH=/run/user/1000/mproxy-1/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
             "/sbin:/bin",
             "MPROXY_SOCK=/run/user/1000/mproxy-1/sock",
             "MPROXY_STUB_DIR=/run/user/1000/mproxy-1/bin", "MPROXY_HOST=build-box",
             "MPROXY_SESSION=s1"});
}

TEST_CASE("the environment keeps the outer order and replaces stale session variables", "[ns]") {
  NamespaceSpec spec = BasicSpec();
  spec.path_injection = PathInjection::kAppend;
  std::vector<std::string> outer = {
      "MPROXY_SOCK=/old/sock",  // an outer session's: replaced
      "LANG=C.UTF-8",
      "PATH=/old/stub:/usr/bin",
      "MPROXY_HOST=old-box",
      "MPROXY_AGENT_LOG=debug",  // a user setting for mproxy itself: kept
      "NOEQUALS",                // malformed: dropped
      "=x",                      // no name: dropped
      "LANG=de_DE.UTF-8",        // a repeat: the first wins, as with getenv
      "EMPTY=",
      "WITH SPACE=a b=c",
  };
  CHECK(BuildEnv(outer, spec) == Argv{"LANG=C.UTF-8",
                                      "PATH=/old/stub:/usr/bin:/run/user/1000/mproxy-1/bin",
                                      "MPROXY_AGENT_LOG=debug", "EMPTY=", "WITH SPACE=a b=c",
                                      "MPROXY_SOCK=/run/user/1000/mproxy-1/sock",
                                      "MPROXY_STUB_DIR=/run/user/1000/mproxy-1/bin",
                                      "MPROXY_HOST=build-box", "MPROXY_SESSION=s1"});
}

TEST_CASE("session variables left empty in the spec are not set, even from outside", "[ns]") {
  NamespaceSpec spec;
  spec.program = {"sh"};
  spec.socket_path = "/tmp/a b/sock";
  CHECK(BuildEnv({"MPROXY_SESSION=old", "MPROXY_STUB_DIR=/old", "PATH=/bin"}, spec) ==
        Argv{"PATH=/bin", "MPROXY_SOCK=/tmp/a b/sock"});
}

TEST_CASE("a search path without bwrap gives a reason and what still works", "[ns]") {
  auto r = FindUsableBwrap("/nonexistent-dir::relative", false);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message() ==
        "bubblewrap: 'bwrap' not found in PATH (install the package bubblewrap); running "
        "without a namespace: remote commands still work through the stub PATH, but mounts "
        "(local:remote) are unavailable");
}

}  // namespace
}  // namespace mproxy::ns
