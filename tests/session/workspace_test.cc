// The remote workspace as the program sees it: the working directory shows
// the remote directory of the same path (FUSE, bound in the namespace), real
// tools and the POSIX conformance suite work on it, and what remote commands
// write is what the program reads next.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "tests/e2e/e2e_util.h"
#include "tests/session/session_fixture.h"

namespace mproxy::session_test {
namespace {

// A directory with the same path on both sides: remotely (the sshd's
// tmpfs) it holds `remote-only`, locally `local-only`. Returns its path.
std::string MakeWorkspace(const SessionFixture& s) {
  if (s.marker().empty()) s.SkipNow("the sshd has no remote-only directory here");
  std::string dir = s.sshd().remote_dir() + "/ws-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  REQUIRE(chmod(dir.c_str(), 0755) == 0);
  std::ofstream(dir + "/local-only") << "local\n";
  s.GiveToUser(dir + "/local-only");
  s.GiveToUser(dir);
  auto made = s.Remote("mkdir -p '" + dir + "' && echo remote >'" + dir + "/remote-only'");
  INFO(made.err);
  REQUIRE(made.Status() == "exit 0");
  return dir;
}

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// Polls for `path` (a program's "I got this far" mark) for up to a minute.
bool WaitForFile(const std::string& path) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!std::filesystem::exists(path) && std::chrono::steady_clock::now() < deadline) {
    usleep(50000);
  }
  return std::filesystem::exists(path);
}

void WorkdirIsRemote(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  std::string dir = MakeWorkspace(s);
  // Absolute paths (/bin/cat) and builtins stay local: they read the mount.
  auto r = s.Bash(
      "pwd; /bin/cat remote-only; [ -e local-only ] && echo local-only visible\n"
      "read -r line <remote-only && echo \"read: $line\"\n"
      "/usr/bin/stat -c '%u %a' remote-only\n"
      "echo made-locally >new; cat new\n",  // cat runs remotely
      {"-w", dir});
  CHECK(r.Status() == "exit 0");
  CHECK(r.err == "");
  CHECK(r.out == dir + "\nremote\nread: remote\n" + std::to_string(s.uid()) + " 644\nmade-locally\n");
  // Outside the session the local directory is untouched.
  CHECK(std::filesystem::exists(dir + "/local-only"));
  CHECK(!std::filesystem::exists(dir + "/remote-only"));
  CHECK(!std::filesystem::exists(dir + "/new"));
  CHECK(s.Remote("cat " + Quote(dir + "/new")).out == "made-locally\n");

  // --no-workspace: the program sees the local directory.
  auto local = s.Bash("/bin/ls", {"-w", dir, "--no-workspace"});
  CHECK(local.Status() == "exit 0");
  CHECK(local.out == "local-only\n");
}
SESSION_TEST_CASE("the working directory shows the remote directory of the same path, "
                  "only inside the session",
                  WorkdirIsRemote)

void MissingRemoteDirectory(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  if (s.marker().empty()) s.SkipNow("the sshd has no remote-only directory here");
  // Under the remote-only tmpfs: it exists here, not there.
  std::string dir = s.sshd().remote_dir() + "/absent-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  s.GiveToUser(dir);
  auto r = s.Bash("echo should-not-run", {"-w", dir});
  CHECK(r.Status() == "exit 255");
  CHECK(r.out == "");
  CHECK(r.err == "mproxy: workspace: " + s.target() + " has no directory " + dir +
                     " (the working directory shows the remote directory of the same path: "
                     "choose another with -w or -v, or pass --no-workspace)\n");
  auto v = s.Bash("echo should-not-run", {"-v", dir + ":/no/such/remote/dir"});
  CHECK(v.Status() == "exit 255");
  // The hint about the working directory is for the working directory only.
  CHECK(v.err == "mproxy: workspace: " + s.target() + " has no directory /no/such/remote/dir\n");
}
SESSION_TEST_CASE("a missing remote directory is a clear error", MissingRemoteDirectory)

void Conformance(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  std::string dir = MakeWorkspace(s);
  auto r = s.Bash(std::string(MPROXY_WS_CONFORMANCE) + " .", {"-w", dir});
  INFO(r.out);
  CHECK(r.err == "");
  CHECK(r.out.find("FAIL") == std::string::npos);
  CHECK(r.Status() == "exit 0");
}
SESSION_TEST_CASE("the POSIX conformance suite passes on the workspace", Conformance)

void RealTools(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  std::string dir = MakeWorkspace(s);
  // Absolute tool paths, so git, tar, cp, sqlite3 and python run locally on
  // the mount rather than remotely.
  auto r = s.Bash("PATH=/usr/bin:/bin " + std::string(MPROXY_WS_REAL_TOOLS) + " .",
                  {"-w", dir});
  INFO(r.out);
  INFO(r.err);
  CHECK(r.out.find("FAIL") == std::string::npos);
  CHECK(r.out.find("ok git.commit") != std::string::npos);
  CHECK(r.out.find("ok tar.compare") != std::string::npos);
  CHECK(r.out.find("ok cp.compare") != std::string::npos);
  CHECK(r.out.find("ok python.editor_save") != std::string::npos);
  CHECK(r.Status() == "exit 0");
}
SESSION_TEST_CASE("git, tar, cp -a, sqlite, python and an editor-style save work on the workspace",
                  RealTools)

// Whatever the kernel cached before a remote command ran, the next local
// access sees what the command did.
void RemoteThenLocal(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  std::string dir = MakeWorkspace(s);
  auto r = s.Bash(
      "C=/bin/cat\n"
      "printf one >f; $C f; echo\n"
      "sh -c 'printf two >f'; $C f; echo\n"                 // rewritten remotely
      "sh -c 'printf three >>f'; $C f; echo\n"              // appended remotely
      "[ -e built ] || echo absent\n"                      // a negative entry
      "sh -c 'echo built >built' && $C built\n"             // make && cat out
      "$C gone 2>/dev/null; echo x >gone; sh -c 'rm gone'\n"
      "[ -e gone ] && echo still || echo removed\n"
      "echo again >gone && $C gone\n"                       // created anew locally
      "sh -c 'mv built renamed'; /bin/ls\n"
      "echo local >l; cat l\n"                              // local write, remote read
      "/bin/mkdir d && cd d && sh -c 'true' && /bin/pwd && /usr/bin/git init -q . && echo git-ok\n",
      {"-w", dir});
  CHECK(r.err == "");
  CHECK(r.out ==
        "one\ntwo\ntwothree\nabsent\nbuilt\nremoved\nagain\nf\ngone\nremote-only\nrenamed\n"
        "local\n" +
            dir + "/d\ngit-ok\n");
  CHECK(r.Status() == "exit 0");
}
SESSION_TEST_CASE("what a remote command writes is what the program reads next, and back",
                  RemoteThenLocal)

// Writes are answered before the remote host has them (write-behind), yet a
// remote command started after a write sees it, and a failed write is
// reported by close() or fsync(), never lost in silence.
void WriteBehind(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  std::string dir = MakeWorkspace(s);
  std::string expected;
  for (int i = 1; i <= 30; ++i) expected += std::to_string(i) + "\n";
  // `echo` is bash's own (local) write, `tail` runs remotely at once.
  auto r = s.Bash("for i in $(seq 1 30); do echo $i >>log; tail -n 1 log; done", {"-w", dir});
  CHECK(r.err == "");
  CHECK(r.out == expected);
  CHECK(r.Status() == "exit 0");

  // The remote filesystem full: every way of writing reports ENOSPC.
  REQUIRE(s.Remote("cd " + Quote(dir) + " && (dd if=/dev/zero of=filler bs=1M 2>/dev/null; true)")
              .Status() == "exit 0");
  r = s.Bash(
      "/usr/bin/python3 - <<'EOF'\n"
      "import os\n"
      "def attempt(name, sync):\n"
      "    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)\n"
      "    said = []\n"
      "    for step in ('write', 'fsync', 'close'):\n"
      "        if step == 'fsync' and not sync: continue\n"
      "        try:\n"
      "            if step == 'write': os.write(fd, b'x' * 65536)\n"
      "            elif step == 'fsync': os.fsync(fd)\n"
      "            else: os.close(fd)\n"
      "        except OSError as e:\n"
      "            said.append(e.strerror)\n"
      "            if step == 'close': break\n"
      "    print(name, said[:1])\n"
      "attempt('a', False)\n"
      "attempt('b', True)\n"
      "EOF\n"
      "rm -f filler && echo room >a && cat a\n",
      {"-w", dir});
  CHECK(r.err == "");
  CHECK(r.out ==
        "a ['No space left on device']\nb ['No space left on device']\nroom\n");
  CHECK(r.Status() == "exit 0");
}
SESSION_TEST_CASE("a write is answered at once, yet remote commands see it and a failure is "
                  "reported by close",
                  WriteBehind)

// Listings give the kernel nodes for directories only, until lookups show
// that the program wants the files' attributes too (see WorkspaceFs::lean_).
// A listing must still correct what the kernel already holds: here a "no such
// file" it may trust for 5 s, for a file a still-running remote command made.
void ListingCorrectsMissing(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  std::string dir = MakeWorkspace(s);
  auto r = s.Bash(
      "/usr/bin/python3 - <<'EOF'\n"
      "import os, subprocess, time\n"
      "os.mkdir('t')\n"
      "open('t/old', 'w').close()\n"
      "start = time.monotonic()\n"
      "print(os.path.exists('t/new'))\n"
      // sh runs remotely and keeps running: no revalidation at its exit.
      "p = subprocess.Popen(['sh', '-c', 'echo x >t/new && echo made && exec sleep 60'],\n"
      "                     stdout=subprocess.PIPE, text=True)\n"
      "print(p.stdout.readline().strip())\n"
      // The workspace's own listing of t is kept 2 s.
      "time.sleep(max(0.0, 2.2 - (time.monotonic() - start)))\n"
      "print(sorted(os.listdir('t')))\n"
      "print(os.path.exists('t/new'), open('t/new').read().strip())\n"
      "print('within 5 s' if time.monotonic() - start < 4.5 else 'too slow to tell')\n"
      "p.kill()\n"
      "p.wait()\n"
      "EOF\n"
      // Many files stat'ed after their listing: listings turn full, and
      // every file still shows its own size.
      "mkdir many && for i in $(seq 1 40); do printf %${i}s >many/f$i; done\n"
      "/bin/ls -l many | /usr/bin/awk 'NR > 1 { s += $5 } END { print NR - 1, s }'\n",
      {"-w", dir});
  CHECK(r.err == "");
  CHECK(r.out == "False\nmade\n['new', 'old']\nTrue x\nwithin 5 s\n40 820\n");
  CHECK(r.Status() == "exit 0");
}
SESSION_TEST_CASE("a listing shows the kernel a file it had as missing, and ls -l sees every file",
                  ListingCorrectsMissing)

// Extended attributes: user.* passes both ways; by default other namespaces
// are EOPNOTSUPP (workspace.xattrs = "user"), with "all" they reach the
// remote filesystem (a tmpfs there: no SELinux label, so ENODATA).
void Xattrs(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  std::string dir = MakeWorkspace(s);
  REQUIRE(s.Remote("cd " + Quote(dir) + " && echo x >f && python3 -c \"import os; "
                   "os.setxattr('f', 'user.remote', b'from-remote')\"")
              .Status() == "exit 0");
  // /usr/bin/python3 runs locally (an absolute path); it reads the mount.
  const std::string probe =
      "/usr/bin/python3 - <<'EOF'\n"
      "import os\n"
      "print(os.getxattr('f', 'user.remote').decode())\n"
      "os.setxattr('f', 'user.local', b'from-local')\n"
      "print(sorted(os.listxattr('f')))\n"
      "for op, args in (('get', ('f', 'security.selinux')),\n"
      "                 ('set', ('f', 'trusted.t', b'v')),\n"
      "                 ('remove', ('f', 'security.selinux'))):\n"
      "    try:\n"
      "        getattr(os, op + 'xattr')(*args)\n"
      "        print(op, 'ok')\n"
      "    except OSError as e:\n"
      "        print(op, e.strerror)\n"
      "EOF\n"
      // python3 (no path) runs remotely: it sees what the program set.
      "python3 -c \"import os; print(os.getxattr('f', 'user.local').decode())\"\n";
  auto r = s.Bash(probe, {"-w", dir});
  CHECK(r.err == "");
  // Without CAP_SYS_ADMIN the local kernel refuses trusted.* itself.
  const std::string set_trusted =
      as == As::kRoot ? "Operation not supported" : "Operation not permitted";
  CHECK(r.out == "from-remote\n['user.local', 'user.remote']\nget Operation not supported\nset " +
                     set_trusted + "\nremove Operation not supported\nfrom-local\n");
  CHECK(r.Status() == "exit 0");

  const std::string config = s.scratch() + "/xattrs-all.toml";
  e2e::WriteFile(config, "[workspace]\nxattrs = \"all\"\n");
  s.GiveToUser(config);
  r = s.Bash(probe, {"-w", dir, "--config", config});
  CHECK(r.err == "");
  // trusted.* needs CAP_SYS_ADMIN there; the agent runs as a plain user.
  CHECK(r.out ==
        "from-remote\n['user.local', 'user.remote']\nget No data available\n"
        "set Operation not permitted\nremove No data available\nfrom-local\n");
  CHECK(r.Status() == "exit 0");
}
SESSION_TEST_CASE("only user.* extended attributes pass unless workspace.xattrs is \"all\"",
                  Xattrs)

// A hung host: file operations fail with EIO once keepalives give up, and
// the program goes on.
void HungHost(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  std::string dir = MakeWorkspace(s);
  REQUIRE(s.Remote("echo other >" + Quote(dir + "/other")).Status() == "exit 0");
  std::string ready = s.scratch() + "/ready", paused = s.scratch() + "/paused";
  auto child = s.SpawnBash(
      "/bin/cat remote-only && : >\"$T/ready\"\n"
      "while [ ! -e \"$T/paused\" ]; do /bin/sleep 0.1; done\n"
      "/bin/cat other; echo \"cat $?\"\n",
      {"-w", dir});
  REQUIRE(WaitForFile(ready));
  REQUIRE(s.PauseRemote().ok());
  std::ofstream(paused) << "";
  // kLimit is the anti-hang bound; keepalives give up after about 15 s.
  auto r = child->Communicate("", kLimit);
  (void)s.ResumeRemote();
  INFO("the session's stderr: " << r.err);
  CHECK(r.out == "remote\ncat 1\n");
  // cat's message comes in pieces (glibc's error() writes "/bin/cat: ",
  // "other", ": Input/output error" apart), and mproxy's own line about the
  // lost connection, written at that very moment, may land between them.
  CHECK(r.err.find(": Input/output error") != std::string::npos);
  CHECK(r.err.find("; reconnecting (remote commands fail until then)") != std::string::npos);
  CHECK(r.Status() == "exit 0");
}
SESSION_TEST_CASE("on a hung host workspace operations fail with EIO instead of hanging",
                  HungHost)

// The connection drops and the network heals: remote commands fail while
// it is down, mproxy connects again by itself, and then remote commands and
// the workspace work again in the same program.
void Reconnect(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  std::string dir = MakeWorkspace(s);
  std::string ready = s.scratch() + "/ready", dropped = s.scratch() + "/dropped";
  // 1 MiB of x and "END": far beyond what an open reads ahead.
  REQUIRE(s.Remote("cd " + Quote(dir) + " && printf '%1048576s' | tr ' ' x >big && echo END >>big")
              .Status() == "exit 0");
  // A local program holds `big` open across the drop (a bash fd would be
  // inherited, and read, by every remote command).
  auto child = s.SpawnBash(
      "/usr/bin/python3 -c 'import os, sys, time\n"
      "fd = os.open(\"big\", os.O_RDONLY); open(sys.argv[1], \"w\").close()\n"
      "while not os.path.exists(sys.argv[2]): time.sleep(0.05)\n"
      "try: os.pread(fd, 4, 1048576); print(\"opened before: read\")\n"
      "except OSError as e: print(\"opened before:\", e.strerror)\n"
      "os.close(fd); print(\"closed\")' \"$T/opened\" \"$T/again\" & holder=$!\n"
      "while [ ! -e \"$T/opened\" ]; do /bin/sleep 0.1; done\n"
      "sleep 60 & running=$!\n"  // a remote command running across the drop
      "cat remote-only && : >\"$T/ready\"\n"
      "while [ ! -e \"$T/dropped\" ]; do /bin/sleep 0.1; done\n"
      "wait $running; echo \"running: $?\"\n"
      // Until the new connection is up, remote commands fail (255).
      "for i in $(/usr/bin/seq 150); do cat remote-only 2>/dev/null && break; /bin/sleep 0.2; done\n"
      "echo written-after >after; cat after; /bin/cat remote-only\n"
      ": >\"$T/again\"; wait $holder\n"
      "/usr/bin/tail -c 4 big\n",
      {"-w", dir});
  REQUIRE(WaitForFile(ready));
  REQUIRE(s.DropConnections().ok());
  std::ofstream(dropped) << "";
  auto r = child->Communicate("", kLimit);
  CHECK(r.out ==
        "remote\nrunning: 255\nremote\nwritten-after\nremote\n"
        "opened before: Input/output error\nclosed\nEND\n");
  CHECK(r.err.find("; reconnecting (remote commands fail until then)\n") != std::string::npos);
  CHECK(r.err.find("mproxy: reconnected to ") != std::string::npos);
  CHECK(r.Status() == "exit 0");
  CHECK(s.Remote("cat " + Quote(dir + "/after")).out == "written-after\n");
}
SESSION_TEST_CASE("after the connection drops, mproxy connects again and the session goes on",
                  Reconnect)

}  // namespace
}  // namespace mproxy::session_test
