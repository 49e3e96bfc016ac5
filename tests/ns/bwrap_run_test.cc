// Runs the real bwrap with a built argv and environment. Cases that cannot
// run bwrap here print "SKIPPED: <reason>" and exit 77 (counted as skipped).
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <filesystem>
#include <fstream>

#include "common/io.h"
#include "ns/bwrap_command.h"
#include "ns/bwrap_probe.h"
#include "tests/support/sshd_fixture.h"

extern char** environ;

namespace mproxy::ns {
namespace {

constexpr uid_t kNobody = 65534;

struct Outcome {
  int status = -1;
  std::string out;
};

// fork + execve with stdout captured; in the child, drops to `uid` first when
// it is not the current one (only root can).
Outcome Run(const std::vector<std::string>& args, const std::vector<std::string>& env, uid_t uid) {
  auto pipe = MakePipe();
  REQUIRE(pipe.ok());
  std::vector<char*> argv, envp;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  argv.push_back(nullptr);
  envp.push_back(nullptr);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(pipe->second.get(), 1);
    if (uid != geteuid() && (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0)) {
      _exit(126);
    }
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  pipe->second.Reset();
  Outcome o;
  auto out = ReadToEof(pipe->first.get());
  REQUIRE(out.ok());
  o.out = *out;
  while (waitpid(pid, &o.status, 0) < 0 && errno == EINTR) {
  }
  return o;
}

std::vector<std::string> OuterEnv() {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  env.push_back("MPROXY_SOCK=/stale/outer/sock");
  return env;
}

// A scratch tree: "<tmp>/work dir" (the cwd and mount destination) and
// "<tmp>/ws" (the mount source, holding a marker file). World-readable so an
// unprivileged user can enter it too.
struct Scratch {
  Scratch() {
    char tmpl[] = "/tmp/mproxy-ns-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    root = tmpl;
    std::filesystem::create_directories(root + "/work dir");
    std::filesystem::create_directories(root + "/ws");
    std::ofstream(root + "/ws/marker") << "from the mount\n";
    for (const char* p : {"", "/work dir", "/ws"}) chmod((root + p).c_str(), 0755);
    chmod((root + "/ws/marker").c_str(), 0644);
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  }
  std::string root;
};

NamespaceSpec TestSpec(const Scratch& s, const std::string& bwrap, bool unshare_user) {
  NamespaceSpec spec;
  spec.bwrap_path = bwrap;
  spec.unshare_user = unshare_user;
  spec.socket_path = s.root + "/run dir/sock";
  spec.stub_dir = s.root + "/stubs";
  spec.mounts = {{s.root + "/ws", s.root + "/work dir"}};
  spec.cwd = s.root + "/work dir";
  spec.program = {"/bin/sh", "-c",
                  "echo $MPROXY_SOCK; pwd; cat marker; echo \"$PATH\" | cut -d: -f1"};
  return spec;
}

TEST_CASE("bwrap runs the program in the namespace with the session environment", "[ns]") {
  auto bwrap = FindUsableBwrap();
  if (!bwrap.ok()) testing::Skip(bwrap.error().message());
  Scratch s;
  NamespaceSpec spec = TestSpec(s, *bwrap, NeedUserNamespace());
  REQUIRE(CheckNamespaceSpec(spec).ok());
  Outcome o = Run(BuildBwrapArgv(spec), BuildEnv(OuterEnv(), spec), geteuid());
  CHECK(WIFEXITED(o.status));
  CHECK(WEXITSTATUS(o.status) == 0);
  CHECK(o.out ==
        s.root + "/run dir/sock\n" + s.root + "/work dir\nfrom the mount\n" + s.root + "/stubs\n");
  // The bind lived in the namespace only.
  CHECK_FALSE(std::filesystem::exists(s.root + "/work dir/marker"));
}

TEST_CASE("an unprivileged user gets the same namespace through a user namespace", "[ns]") {
  if (geteuid() != 0) {
    testing::Skip("needs root to switch to an unprivileged user (the other case runs as this one)");
  }
  auto bwrap = FindUsableBwrap();
  if (!bwrap.ok()) testing::Skip(bwrap.error().message());
  Scratch s;
  // Probe as nobody first: a kernel without unprivileged user namespaces is
  // this machine's limit, not a bug.
  NamespaceSpec probe;
  probe.bwrap_path = *bwrap;
  probe.unshare_user = true;
  probe.cwd = "/";
  probe.program = {"/bin/true"};
  if (Outcome p = Run(BuildBwrapArgv(probe), {}, kNobody); p.status != 0) {
    testing::Skip("bwrap cannot create a user namespace for an unprivileged user here");
  }
  NamespaceSpec spec = TestSpec(s, *bwrap, true);
  Outcome o = Run(BuildBwrapArgv(spec), BuildEnv(OuterEnv(), spec), kNobody);
  CHECK(o.status == 0);
  CHECK(o.out ==
        s.root + "/run dir/sock\n" + s.root + "/work dir\nfrom the mount\n" + s.root + "/stubs\n");
}

TEST_CASE("the probe reports a bwrap that cannot build the namespace", "[ns]") {
  // A fake "bwrap" that fails the way a kernel without user namespaces makes
  // the real one fail.
  Scratch s;
  std::string fake = s.root + "/bin";
  std::filesystem::create_directories(fake);
  std::ofstream(fake + "/bwrap")
      << "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n";
  chmod((fake + "/bwrap").c_str(), 0755);
  auto r = FindUsableBwrap(fake, true);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message() == "bubblewrap: " + fake +
                                   "/bwrap cannot create a namespace here (exited 1): bwrap: No "
                                   "permissions to create new namespace; " +
                                   std::string(kWithoutBwrap));
}

}  // namespace
}  // namespace mproxy::ns
