// The session's private directory and the shim socket's peer check.
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "broker/runtime_dir.h"
#include "broker/shim_listener.h"
#include "common/unix_socket.h"
#include "tests/support/sshd_fixture.h"

namespace mproxy::broker {
namespace {

namespace fs = std::filesystem;

std::string TempParent() {
  std::string t = "/tmp/mproxy-rdtest-XXXXXX";
  REQUIRE(mkdtemp(t.data()) != nullptr);
  return t;
}

TEST_CASE("the runtime directory is private and removed at the end", "[broker]") {
  std::string parent = TempParent();
  std::string path;
  {
    auto dir = RuntimeDir::CreateUnder(parent + "/sub");
    REQUIRE(dir.ok());
    path = (*dir)->path();
    struct stat st {};
    REQUIRE(stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    REQUIRE(stat((parent + "/sub").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    CHECK(fs::is_directory((*dir)->stub_dir()));
    CHECK((*dir)->socket_path() == path + "/sock");
    CHECK((*dir)->id().size() == 6);
    // The fallback stub dir is made of symlinks; they go too.
    REQUIRE(symlink("/bin/true", ((*dir)->stub_dir() + "/true").c_str()) == 0);
  }
  CHECK_FALSE(fs::exists(path));
  fs::remove_all(parent);
}

TEST_CASE("a shared parent directory open to others is closed, one of another user refused",
          "[broker]") {
  std::string parent = TempParent();
  REQUIRE(chmod(parent.c_str(), 0777) == 0);
  {
    auto dir = RuntimeDir::CreateUnder(parent);
    REQUIRE(dir.ok());
    struct stat st {};
    REQUIRE(stat(parent.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
  }
  if (geteuid() == 0) {
    REQUIRE(chown(parent.c_str(), 65534, 65534) == 0);
    auto dir = RuntimeDir::CreateUnder(parent);
    REQUIRE_FALSE(dir.ok());
    CHECK_THAT(dir.error().message(),
               Catch::Contains("belongs to uid 65534, not to this user (0)"));
  }
  fs::remove_all(parent);
}

// Connects to `path` as `uid` in a child process; returns what the child
// read before EOF ("" when the listener hung up at once).
int ConnectAs(const std::string& path, uid_t uid, int* child_pipe_read) {
  int p[2];
  REQUIRE(pipe(p) == 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    if (uid != geteuid() && setuid(uid) != 0) _exit(3);
    auto sock = ConnectUnix(path);
    if (!sock) _exit(4);
    char c;
    // The listener either keeps us (no EOF: we write 'k') or hangs up.
    struct timeval tv = {1, 0};
    setsockopt(sock->get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n = read(sock->get(), &c, 1);
    (void)!write(p[1], n == 0 ? "eof" : "kept", n == 0 ? 3 : 4);
    _exit(0);
  }
  close(p[1]);
  *child_pipe_read = p[0];
  return pid;
}

TEST_CASE("the shim socket takes connections from this user only", "[broker]") {
  if (geteuid() != 0) mproxy::testing::Skip("needs root to connect as another user");
  std::string parent = TempParent();
  auto dir = RuntimeDir::CreateUnder(parent + "/s");
  REQUIRE(dir.ok());
  // The other user must be able to reach the socket to be refused by the
  // peer check rather than by the directory's mode.
  REQUIRE(chmod((*dir)->path().c_str(), 0711) == 0);
  REQUIRE(chmod((parent + "/s").c_str(), 0711) == 0);
  REQUIRE(chmod(parent.c_str(), 0711) == 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::vector<UniqueFd> accepted;
  {
    auto listener = ShimListener::Listen(&loop, (*dir)->socket_path(),
                                         [&](UniqueFd fd) { accepted.push_back(std::move(fd)); });
    REQUIRE(listener.ok());
    REQUIRE(chmod((*dir)->socket_path().c_str(), 0777) == 0);
    for (uid_t uid : {uid_t{65534}, geteuid()}) {
      int rd = -1;
      pid_t pid = ConnectAs((*dir)->socket_path(), uid, &rd);
      for (int i = 0; i < 50; ++i) uv_run(&loop, UV_RUN_NOWAIT), usleep(20000);
      char buf[8] = {};
      ssize_t n = read(rd, buf, sizeof buf);
      close(rd);
      int status = 0;
      waitpid(pid, &status, 0);
      REQUIRE(WIFEXITED(status));
      REQUIRE(WEXITSTATUS(status) == 0);
      CHECK(std::string(buf, n > 0 ? n : 0) == (uid == geteuid() ? "kept" : "eof"));
    }
    CHECK(accepted.size() == 1);
  }
  accepted.clear();
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
  CHECK_FALSE(fs::exists((*dir)->socket_path()));
  dir->reset();
  fs::remove_all(parent);
}

}  // namespace
}  // namespace mproxy::broker
