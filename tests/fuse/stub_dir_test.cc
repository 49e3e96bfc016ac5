// StubDir against real FUSE: listing, the shared inode, reading, exec via a
// PATH lookup with a stand-in shim, EROFS/ENOENT, SetNames, refresh on miss,
// parallel execs, unmount, stale mounts, unprivileged mounts, clear errors.
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/io.h"
#include "fuse/session.h"
#include "fuse/stub_dir.h"
#include "tests/support/sshd_fixture.h"

extern char** environ;

namespace mproxy::fuse {
namespace {

constexpr long kFuseSuperMagic = 0x65735546;
constexpr uid_t kNobody = 65534;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::string& ProbePath() {
  static const std::string path = MPROXY_TEST_ARGV_PROBE;
  return path;
}

// A fresh directory with an empty "mnt" inside. Declared before the StubDir
// so it outlives it; detaches anything still mounted on "mnt" even when a
// test failed half way.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/mproxy-fuse-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
    mnt_ = path_ + "/mnt";
    REQUIRE(mkdir(mnt_.c_str(), 0755) == 0);
  }
  ~TempDir() {
    umount2(mnt_.c_str(), MNT_DETACH);  // no-op when nothing is mounted
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  const std::string& mnt() const { return mnt_; }

 private:
  std::string path_;
  std::string mnt_;
};

StubDirOptions Options(const TempDir& dir, std::vector<std::string> names) {
  StubDirOptions o;
  o.mountpoint = dir.mnt();
  o.shim_path = ProbePath();
  o.names = std::move(names);
  return o;
}

std::unique_ptr<StubDir> MountOrSkip(StubDirOptions options) {
  if (Status s = CheckFuseUsable(); !s) testing::Skip(s.error().message());
  auto dir = StubDir::Mount(std::move(options));
  if (!dir.ok()) testing::Skip("cannot mount FUSE here: " + dir.error().message());
  return std::move(dir).value();
}

std::set<std::string> ListDir(const std::string& path, bool* all_regular) {
  std::set<std::string> names;
  *all_regular = true;
  DIR* d = opendir(path.c_str());
  REQUIRE(d != nullptr);
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    names.insert(n);
    if (e->d_type != DT_REG) *all_regular = false;
  }
  closedir(d);
  return names;
}

int StatErrno(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? 0 : errno;
}

struct Child {
  pid_t pid = -1;
  UniqueFd out;
};

// fork + execvp(argv[0]) with PATH=`path` (set in the child only; swapping
// `environ` is async-signal-safe), stdout into a pipe.
Child StartWithPath(const std::string& path, std::vector<std::string> args) {
  auto pipe = MakePipe();
  REQUIRE(pipe.ok());
  std::string path_var = "PATH=" + path;
  std::vector<char*> envp = {path_var.data(), nullptr};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(pipe->second.get(), 1);
    environ = envp.data();
    execvp(argv[0], argv.data());
    _exit(127);
  }
  Child c;
  c.pid = pid;
  c.out = std::move(pipe->first);
  return c;
}

struct Finished {
  int status = -1;
  std::string out;
};

Finished Wait(Child& c) {
  Finished f;
  auto out = ReadToEof(c.out.get());
  REQUIRE(out.ok());
  f.out = std::move(out).value();
  while (waitpid(c.pid, &f.status, 0) < 0) REQUIRE(errno == EINTR);
  return f;
}

Finished RunWithPath(const std::string& path, std::vector<std::string> args) {
  Child c = StartWithPath(path, std::move(args));
  return Wait(c);
}

bool ExitedZero(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

// Waits for an asynchronous kernel invalidation. The deadline only stops a
// broken build from hanging; nothing is measured.
bool EventuallyErrno(const std::string& path, int want) {
  for (int i = 0; i < 2000; ++i) {
    if (StatErrno(path) == want) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

TEST_CASE("the stub dir lists exactly the given names as regular files", "[fuse]") {
  TempDir tmp;
  auto dir = MountOrSkip(Options(tmp, {"grep", "make", "ls", "git"}));
  bool regular = false;
  CHECK(ListDir(tmp.mnt(), &regular) ==
        std::set<std::string>{"git", "grep", "ls", "make"});
  CHECK(regular);
  CHECK(dir->names() == std::vector<std::string>{"git", "grep", "ls", "make"});
}

TEST_CASE("all entries share one inode with the shim's size and mode 0555", "[fuse]") {
  TempDir tmp;
  auto dir = MountOrSkip(Options(tmp, {"foo", "bar", "baz"}));
  struct stat shim {}, a {}, b {};
  REQUIRE(stat(ProbePath().c_str(), &shim) == 0);
  REQUIRE(stat((tmp.mnt() + "/foo").c_str(), &a) == 0);
  REQUIRE(stat((tmp.mnt() + "/bar").c_str(), &b) == 0);
  CHECK(a.st_ino == b.st_ino);
  CHECK(a.st_dev == b.st_dev);
  CHECK(S_ISREG(a.st_mode));
  CHECK((a.st_mode & 07777) == 0555);
  CHECK(a.st_size == shim.st_size);
  CHECK(a.st_nlink == 3);  // one hard link per name
  struct statfs fs {};
  REQUIRE(statfs(tmp.mnt().c_str(), &fs) == 0);
  CHECK(fs.f_type == kFuseSuperMagic);
}

TEST_CASE("reading an entry gives the shim's bytes exactly", "[fuse]") {
  TempDir tmp;
  auto dir = MountOrSkip(Options(tmp, {"foo", "bar"}));
  std::string shim = ReadFile(ProbePath());
  REQUIRE(!shim.empty());
  CHECK(ReadFile(tmp.mnt() + "/foo") == shim);
  CHECK(ReadFile(tmp.mnt() + "/bar") == shim);
}

TEST_CASE("an entry run through a PATH lookup gets the caller's argv and AT_EXECFN", "[fuse]") {
  TempDir tmp;
  auto dir = MountOrSkip(Options(tmp, {"foo", "bar"}));
  Finished f = RunWithPath(tmp.mnt(), {"foo", "a", "b c"});
  CHECK(ExitedZero(f.status));
  CHECK(f.out == "argv0=foo\narg=a\narg=b c\nexecfn=" + tmp.mnt() +
                     "/foo\nexe=" + tmp.mnt() + "/foo\n");
  CHECK(dir->PathOf("foo") == tmp.mnt() + "/foo");
}

TEST_CASE("command -v and type find stub entries", "[fuse]") {
  TempDir tmp;
  auto dir = MountOrSkip(Options(tmp, {"foo"}));
  Finished f = RunWithPath(tmp.mnt(), {"/bin/sh", "-c", "type foo; command -v foo"});
  CHECK(ExitedZero(f.status));
  CHECK(f.out == "foo is " + tmp.mnt() + "/foo\n" + tmp.mnt() + "/foo\n");
  if (access("/bin/bash", X_OK) == 0) {
    // What tab completion offers: bash's command-name completion.
    Finished b = RunWithPath(tmp.mnt(), {"/bin/bash", "-c", "compgen -c foo; type -P foo"});
    CHECK(ExitedZero(b.status));
    CHECK(b.out == "foo\n" + tmp.mnt() + "/foo\n");
  }
  Finished missing = RunWithPath(tmp.mnt(), {"/bin/sh", "-c", "command -v nope"});
  CHECK(!ExitedZero(missing.status));
}

TEST_CASE("unknown names are ENOENT and every write is EROFS", "[fuse]") {
  TempDir tmp;
  auto dir = MountOrSkip(Options(tmp, {"foo"}));
  const std::string foo = tmp.mnt() + "/foo";
  CHECK(StatErrno(tmp.mnt() + "/nope") == ENOENT);
  CHECK(open((tmp.mnt() + "/nope").c_str(), O_RDONLY) == -1);
  CHECK(errno == ENOENT);
  CHECK(open(foo.c_str(), O_WRONLY) == -1);
  CHECK(errno == EROFS);
  CHECK(open(foo.c_str(), O_RDWR) == -1);
  CHECK(errno == EROFS);
  CHECK(open((tmp.mnt() + "/new").c_str(), O_WRONLY | O_CREAT, 0644) == -1);
  CHECK(errno == EROFS);
  CHECK(mkdir((tmp.mnt() + "/d").c_str(), 0755) == -1);
  CHECK(errno == EROFS);
  CHECK(unlink(foo.c_str()) == -1);
  CHECK(errno == EROFS);
  CHECK(chmod(foo.c_str(), 0777) == -1);
  CHECK(errno == EROFS);
  CHECK(rename(foo.c_str(), (tmp.mnt() + "/bar").c_str()) == -1);
  CHECK(errno == EROFS);
}

TEST_CASE("SetNames adds and removes entries visibly", "[fuse]") {
  TempDir tmp;
  auto dir = MountOrSkip(Options(tmp, {"foo", "bar"}));
  // Cache a positive dentry for foo first, so removal must invalidate it.
  REQUIRE(StatErrno(tmp.mnt() + "/foo") == 0);
  REQUIRE(StatErrno(tmp.mnt() + "/baz") == ENOENT);

  dir->SetNames({"bar", "baz", "bad/name", "", "..", "baz"});
  CHECK(dir->names() == std::vector<std::string>{"bar", "baz"});
  CHECK(StatErrno(tmp.mnt() + "/baz") == 0);
  bool regular = false;
  CHECK(ListDir(tmp.mnt(), &regular) == std::set<std::string>{"bar", "baz"});
  CHECK(EventuallyErrno(tmp.mnt() + "/foo", ENOENT));
  Finished f = RunWithPath(tmp.mnt(), {"baz"});
  CHECK(ExitedZero(f.status));
  CHECK(f.out.rfind("argv0=baz\n", 0) == 0);
}

TEST_CASE("a lookup miss re-enumerates and the new name appears", "[fuse]") {
  TempDir tmp;
  std::atomic<int> calls{0};
  StubDirOptions o = Options(tmp, {"foo"});
  o.refresh_interval = std::chrono::milliseconds(0);
  o.refresh = [&]() -> Result<std::vector<std::string>> {
    ++calls;
    return std::vector<std::string>{"foo", "newcmd"};
  };
  auto dir = MountOrSkip(std::move(o));
  CHECK(calls == 0);
  Finished f = RunWithPath(tmp.mnt(), {"newcmd", "x"});
  CHECK(ExitedZero(f.status));
  CHECK(f.out.rfind("argv0=newcmd\narg=x\n", 0) == 0);
  CHECK(calls == 1);
  CHECK(dir->names() == std::vector<std::string>{"foo", "newcmd"});
  // Window 0: every miss asks again; a hit never does.
  CHECK(StatErrno(tmp.mnt() + "/other") == ENOENT);
  CHECK(StatErrno(tmp.mnt() + "/other") == ENOENT);
  CHECK(StatErrno(tmp.mnt() + "/foo") == 0);
  CHECK(calls == 3);
}

TEST_CASE("refresh runs at most once per window for a burst of misses", "[fuse]") {
  TempDir tmp;
  std::atomic<int> calls{0};
  StubDirOptions o = Options(tmp, {"foo"});
  o.refresh_interval = std::chrono::hours(1);
  o.refresh = [&]() -> Result<std::vector<std::string>> {
    ++calls;
    return std::vector<std::string>{"foo"};
  };
  auto dir = MountOrSkip(std::move(o));
  std::vector<std::thread> threads;
  std::atomic<int> enoent{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        std::string p = tmp.mnt() + "/miss" + std::to_string(t * 100 + i);
        if (StatErrno(p) == ENOENT) ++enoent;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(enoent == 200);
  CHECK(calls == 1);
  // Inside the window a name that appeared remotely is not seen yet, but
  // SetNames from the owner still works at once.
  dir->SetNames({"foo", "late"});
  CHECK(StatErrno(tmp.mnt() + "/late") == 0);
  CHECK(calls == 1);
}

TEST_CASE("a failing refresh keeps the old names", "[fuse]") {
  TempDir tmp;
  StubDirOptions o = Options(tmp, {"foo"});
  o.refresh_interval = std::chrono::milliseconds(0);
  o.refresh = []() -> Result<std::vector<std::string>> {
    return Error("agent gone");
  };
  auto dir = MountOrSkip(std::move(o));
  CHECK(StatErrno(tmp.mnt() + "/nope") == ENOENT);
  CHECK(StatErrno(tmp.mnt() + "/foo") == 0);
  CHECK(dir->names() == std::vector<std::string>{"foo"});
}

TEST_CASE("100 parallel execs of stub entries all succeed", "[fuse]") {
  TempDir tmp;
  std::vector<std::string> names;
  for (int i = 0; i < 10; ++i) names.push_back("cmd" + std::to_string(i));
  auto dir = MountOrSkip(Options(tmp, names));
  std::vector<Child> children;
  for (int i = 0; i < 100; ++i) {
    children.push_back(
        StartWithPath(tmp.mnt(), {names[i % 10], std::to_string(i)}));
  }
  int ok = 0;
  for (int i = 0; i < 100; ++i) {
    Finished f = Wait(children[i]);
    std::string want = "argv0=" + names[i % 10] + "\narg=" + std::to_string(i) +
                       "\nexecfn=" + tmp.mnt() + "/" + names[i % 10] + "\n";
    if (ExitedZero(f.status) && f.out.rfind(want, 0) == 0) {
      ++ok;
    } else {
      UNSCOPED_INFO("exec " << i << ": status " << f.status << " out " << f.out);
    }
  }
  CHECK(ok == 100);
}

TEST_CASE("destruction unmounts and leaves the directory usable", "[fuse]") {
  TempDir tmp;
  auto dir = MountOrSkip(Options(tmp, {"foo"}));
  REQUIRE(StatErrno(tmp.mnt() + "/foo") == 0);
  dir.reset();
  struct statfs fs {};
  REQUIRE(statfs(tmp.mnt().c_str(), &fs) == 0);
  CHECK(fs.f_type != kFuseSuperMagic);
  std::string file = tmp.mnt() + "/written";
  { std::ofstream(file) << "x"; }
  CHECK(ReadFile(file) == "x");
  CHECK(unlink(file.c_str()) == 0);
}

TEST_CASE("destruction while an entry is open does not hang", "[fuse]") {
  TempDir tmp;
  auto dir = MountOrSkip(Options(tmp, {"foo"}));
  UniqueFd fd(open((tmp.mnt() + "/foo").c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(fd);
  dir.reset();  // busy: detached lazily, the connection closed
  struct statfs fs {};
  REQUIRE(statfs(tmp.mnt().c_str(), &fs) == 0);
  CHECK(fs.f_type != kFuseSuperMagic);
}

TEST_CASE("a stale mount left by a killed process is cleared by the next Mount", "[fuse]") {
  if (Status s = CheckFuseUsable(); !s) testing::Skip(s.error().message());
  TempDir tmp;
  auto ready = MakePipe();
  REQUIRE(ready.ok());
  pid_t pid = fork();  // no FUSE threads in this process yet
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto dir = StubDir::Mount(Options(tmp, {"foo"}));
    char c = dir.ok() ? 'y' : 'n';
    (void)!write(ready->second.get(), &c, 1);
    if (!dir.ok()) _exit(1);
    for (;;) pause();
  }
  ready->second.Reset();
  char c = 0;
  REQUIRE(read(ready->first.get(), &c, 1) == 1);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  if (c != 'y') testing::Skip("cannot mount FUSE here");
  REQUIRE(StatErrno(tmp.mnt()) == ENOTCONN);

  auto dir = StubDir::Mount(Options(tmp, {"bar"}));
  REQUIRE(dir.ok());
  bool regular = false;
  CHECK(ListDir(tmp.mnt(), &regular) == std::set<std::string>{"bar"});
}

TEST_CASE("an unprivileged user can mount and run stubs when /dev/fuse is 0666", "[fuse]") {
  TempDir tmp;
  if (geteuid() == 0) {
    // These machines ship /dev/fuse 0600; fusermount3 (setuid) does the rest.
    if (chmod("/dev/fuse", 0666) != 0) testing::Skip("cannot chmod /dev/fuse");
    // The stand-in shim must be readable by the user: copy it next to mnt.
    std::filesystem::copy_file(ProbePath(), tmp.path() + "/probe");
    REQUIRE(chmod((tmp.path() + "/probe").c_str(), 0755) == 0);
    REQUIRE(chmod(tmp.path().c_str(), 0755) == 0);
    REQUIRE(chown(tmp.mnt().c_str(), kNobody, kNobody) == 0);
  } else {
    std::filesystem::copy_file(ProbePath(), tmp.path() + "/probe");
  }
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Plain checks, no Catch2, in the child: 0 ok, 77 skip, 1 failure.
    if (geteuid() == 0 && (setgroups(0, nullptr) != 0 || setgid(kNobody) != 0 ||
                           setuid(kNobody) != 0)) {
      _exit(77);
    }
    StubDirOptions o = Options(tmp, {"foo"});
    o.shim_path = tmp.path() + "/probe";
    auto dir = StubDir::Mount(std::move(o));
    if (!dir.ok()) {
      std::printf("SKIPPED: unprivileged mount failed: %s\n",
                  dir.error().message().c_str());
      _exit(77);
    }
    Finished f = RunWithPath(tmp.mnt(), {"foo", "z"});
    std::string want = "argv0=foo\narg=z\nexecfn=" + tmp.mnt() + "/foo\n";
    if (!ExitedZero(f.status) || f.out.rfind(want, 0) != 0) {
      std::fprintf(stderr, "exec as uid %d: %s\n", getuid(), f.out.c_str());
      _exit(1);
    }
    dir.value().reset();
    struct statfs fs {};
    if (statfs(tmp.mnt().c_str(), &fs) != 0 || fs.f_type == kFuseSuperMagic) {
      std::fprintf(stderr, "still mounted after destruction\n");
      _exit(1);
    }
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) testing::Skip("unprivileged FUSE mount unavailable");
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("without a usable /dev/fuse the error says which and what still works", "[fuse]") {
  TempDir tmp;
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // A private mount namespace with an empty /dev: nothing outside changes.
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        mount("tmpfs", "/dev", "tmpfs", 0, "mode=0755") != 0) {
      _exit(77);
    }
    auto missing = StubDir::Mount(Options(tmp, {"foo"}));
    if (missing.ok()) _exit(1);
    const std::string& m1 = missing.error().message();
    std::printf("%s\n", m1.c_str());
    if (m1.find("/dev/fuse does not exist") == std::string::npos ||
        m1.find("still works") == std::string::npos) {
      _exit(2);
    }
    if (mknod("/dev/fuse", S_IFCHR | 0600, makedev(10, 229)) != 0) _exit(77);
    if (setgroups(0, nullptr) != 0 || setgid(kNobody) != 0 || setuid(kNobody) != 0) {
      _exit(77);
    }
    Status denied = CheckFuseUsable();
    if (denied.ok()) _exit(3);
    const std::string& m2 = denied.error().message();
    std::printf("%s\n", m2.c_str());
    if (m2.find("cannot open /dev/fuse: Permission denied (mode 0600") ==
            std::string::npos ||
        m2.find("still works") == std::string::npos) {
      _exit(4);
    }
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) testing::Skip("needs a private mount namespace (root)");
  CHECK(WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace mproxy::fuse
