// What travels with each remote command besides argv: the environment the
// program changed (never MPROXY_*, LD_PRELOAD, LD_LIBRARY_PATH), the working
// directory mapped through -v local:remote, and the configuration file.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "tests/e2e/e2e_util.h"
#include "tests/session/session_fixture.h"

namespace mproxy::session_test {
namespace {

void EnvForwarding(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  auto r = s.Bash(
      "FOO=bar env | grep '^FOO='\n"
      "export X=1\n"
      // OUTER_ONLY came from outside and was not changed: not forwarded.
      // LANG matches a keep pattern: forwarded although unchanged.
      "env | grep -E '^(X|OUTER_ONLY|LANG)=' | sort\n"
      "export OUTER_ONLY=changed-inside\n"
      "sh -c 'echo \"outer=$OUTER_ONLY\"'\n"
      "export MPROXY_EXTRA=leak LD_PRELOAD=libc.so.6 LD_LIBRARY_PATH=/nonexistent-lib\n"
      "env | grep -cE '^(MPROXY_|LD_PRELOAD=|LD_LIBRARY_PATH=)'\n"
      "echo \"local: ${MPROXY_SOCK:+sock} ${LD_PRELOAD} ${MPROXY_EXTRA}\"\n");
  CHECK(r.Status() == "exit 0");
  CHECK(r.out ==
        "FOO=bar\nLANG=C.UTF-8\nX=1\nouter=changed-inside\n0\nlocal: sock libc.so.6 leak\n");
  CHECK(r.err == "");
}
SESSION_TEST_CASE("variables the program sets are forwarded but never MPROXY_ ones or LD_PRELOAD",
                  EnvForwarding)

void RemotePath(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  auto login = s.Remote("echo \"$PATH\"");
  REQUIRE(login.Status() == "exit 0");
  auto r = s.Bash(
      "sh -c 'echo \"$PATH\"'\n"
      "export PATH=\"$PATH:/opt/session-extra\"\n"
      "sh -c 'echo \"$PATH\"'\n");
  CHECK(r.Status() == "exit 0");
  CHECK(r.err == "");
  // Unchanged: the remote login PATH, not the local one with the stub dir.
  // Changed: the program's PATH with the stub directory taken out.
  CHECK(r.out == login.out +
                     "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/"
                     "session-extra\n");
}
SESSION_TEST_CASE("remote commands keep the remote PATH unless the program changes it", RemotePath)

// LOCAL maps to REMOTE (a remote-only directory); LOCAL/sub to another one,
// which wins by the longer prefix. Both exist on both sides, so this holds
// whether or not mproxy also mounts the remote side at LOCAL.
struct Mapped {
  std::string local, remote, local_sub, remote_sub;
};

Mapped MakeMappedDirs(const SessionFixture& s) {
  Mapped m;
  m.local = s.scratch() + "/proj";
  m.local_sub = m.local + "/nested";
  m.remote = s.sshd().remote_dir() + "/ws-" + std::to_string(getpid());
  m.remote_sub = s.sshd().remote_dir() + "/other-" + std::to_string(getpid());
  for (const auto& d : {m.local + "/sub", m.local_sub + "/deeper", s.scratch() + "/projX"}) {
    std::filesystem::create_directories(d);
  }
  for (const auto& d :
       {m.local, m.local + "/sub", m.local_sub, m.local_sub + "/deeper", s.scratch() + "/projX"}) {
    REQUIRE(chmod(d.c_str(), 0755) == 0);
    s.GiveToUser(d);
  }
  auto made = s.Remote("mkdir -p '" + m.remote + "/sub' '" + m.remote + "/nested' '" +
                       m.remote_sub + "/deeper'");
  INFO(made.err);
  REQUIRE(made.Status() == "exit 0");
  return m;
}

void MappedCwd(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  Mapped m = MakeMappedDirs(s);
  const std::vector<std::string> maps = {"-v", m.local + ":" + m.remote, "-v",
                                         m.local_sub + ":" + m.remote_sub};
  auto r = s.Bash(
      "cd \"$T/proj/sub\" && \"$(type -P pwd)\"\n"
      "sh -c 'pwd; echo made-remotely >file'\n"
      "cd \"$T/proj\" && sh -c pwd\n"
      "cd \"$T/proj/nested/deeper\" && sh -c pwd\n"
      "cd \"$T/projX\" && sh -c pwd\n",
      maps);
  CHECK(r.Status() == "exit 0");
  CHECK(r.err == "");
  CHECK(r.out == m.remote + "/sub\n" + m.remote + "/sub\n" + m.remote + "\n" + m.remote_sub +
                     "/deeper\n" + s.scratch() + "/projX\n");
  auto file = s.Remote("cat '" + m.remote + "/sub/file'");
  CHECK(file.out == "made-remotely\n");

  // -w: the program starts there, and its first remote command too.
  std::vector<std::string> opts = maps;
  opts.insert(opts.end(), {"-w", m.local + "/sub"});
  auto w = s.Bash("pwd; \"$(type -P pwd)\"", opts);
  CHECK(w.Status() == "exit 0");
  CHECK(w.out == m.local + "/sub\n" + m.remote + "/sub\n");
  CHECK(w.err == "");
}
SESSION_TEST_CASE("a working directory under a -v local:remote mapping arrives mapped", MappedCwd)

// `mproxy [options] TARGET -- program`: a repeatable option (--local, -v, -i)
// right before the target takes one value, not the target too.
void RepeatableOptionBeforeTarget(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  Mapped m = MakeMappedDirs(s);
  auto run = [&](const std::vector<std::string>& opts, const std::string& script) {
    std::vector<std::string> cmd = {e2e::MproxyPath()};
    cmd.insert(cmd.end(), s.connect_opts().begin(), s.connect_opts().end());
    cmd.insert(cmd.end(), opts.begin(), opts.end());
    cmd.insert(cmd.end(), {s.target(), "--", "bash", "-c", script});
    Child::Options o;
    o.argv = s.AsUser(cmd);
    auto r = Child::Spawn(o)->Communicate("", kLimit);
    INFO("options:" << [&] {
      std::string all;
      for (const auto& a : opts) all += " " + a;
      return all;
    }());
    CHECK(r.err == "");
    CHECK(r.Status() == "exit 0");
    return r.out;
  };
  CHECK(run({"--local", "cat"}, "cat \"$M\" 2>/dev/null; echo \"cat $?\"") == "cat 1\n");
  CHECK(run({"-v", m.local + ":" + m.remote}, "cd \"$T/proj/sub\" && sh -c pwd") ==
        m.remote + "/sub\n");
  const std::string key = s.as() == As::kRoot ? s.sshd().key_path() : s.connect_opts()[1];
  CHECK(run({"-i", key}, "echo ok") == "ok\n");
}
SESSION_TEST_CASE("a repeatable option right before the target does not swallow the target",
                  RepeatableOptionBeforeTarget)

void BadConfig(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  struct Case {
    std::string text, key;
  };
  for (const Case& c : {Case{"colour = \"red\"\n", "colour"},
                        Case{"[log]\nlevel = \"warn\"\ncolour = 1\n", "log.colour"},
                        Case{"[env]\nkeep = [\"LANG\"]\nrmeove = [\"AWS_*\"]\n", "env.rmeove"}}) {
    const std::string path = s.scratch() + "/bad.toml";
    e2e::WriteFile(path, c.text);
    s.GiveToUser(path);
    auto r = s.Bash("echo program ran", {"--config", path});
    INFO("config:\n" << Quote(c.text) << "stderr:\n" << Quote(r.err));
    CHECK(r.Status() == "exit 2");
    CHECK(r.out == "");
    CHECK(r.err.find(path) != std::string::npos);
    CHECK(r.err.find(c.key) != std::string::npos);
    CHECK(e2e::CountOf(r.err, "\n") == 1);
  }
}
SESSION_TEST_CASE("a config file with an unknown key exits 2 naming the file and the key",
                  BadConfig)

void GoodConfig(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  const std::string path = s.scratch() + "/mproxy.toml";
  e2e::WriteFile(path, "local = [\"cat\"]\n\n[env]\nremove = [\"SECRET_*\"]\n");
  s.GiveToUser(path);
  auto r = s.Bash(
      "cat \"$M\" 2>/dev/null; echo \"cat $?\"\n"
      "export SECRET_TOKEN=s3cr3t PUBLIC_VALUE=p\n"
      "env | grep -E '^(SECRET_|PUBLIC_)'\n",
      {"--config", path});
  CHECK(r.Status() == "exit 0");
  CHECK(r.out == "cat 1\nPUBLIC_VALUE=p\n");
  CHECK(r.err == "");
}
SESSION_TEST_CASE("the config file's local list and env.remove apply to the session", GoodConfig)

}  // namespace
}  // namespace mproxy::session_test
