// Unix socket helpers: connect/listen by path, fds over SCM_RIGHTS, peer
// credentials.
#include "common/unix_socket.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "common/io.h"

namespace mproxy {
namespace {

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/mproxy-unix-socket-test.XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

std::pair<UniqueFd, UniqueFd> SocketPair() {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  return {UniqueFd(sv[0]), UniqueFd(sv[1])};
}

TEST_CASE("a listening socket accepts a connection by path and names its peer", "[common]") {
  TempDir dir;
  std::string path = dir.path + "/sock";
  auto listener = ListenUnix(path);
  REQUIRE(listener.ok());
  auto client = ConnectUnix(path);
  REQUIRE(client.ok());
  auto server = AcceptUnix(listener->get());
  REQUIRE(server.ok());
  REQUIRE((::fcntl(client->get(), F_GETFD) & FD_CLOEXEC) != 0);
  REQUIRE((::fcntl(server->get(), F_GETFD) & FD_CLOEXEC) != 0);
  auto cred = GetPeerCredentials(server->get());
  REQUIRE(cred.ok());
  REQUIRE(cred->pid == ::getpid());
  REQUIRE(cred->uid == ::geteuid());
  REQUIRE(cred->gid == ::getegid());
}

TEST_CASE("connecting to a missing socket keeps the errno", "[common]") {
  TempDir dir;
  auto c = ConnectUnix(dir.path + "/nothing");
  REQUIRE_FALSE(c.ok());
  REQUIRE(c.error().sys_errno() == ENOENT);
  REQUIRE(c.error().message() == "connect " + dir.path + "/nothing: No such file or directory");
}

TEST_CASE("a socket path too long for sockaddr_un fails with ENAMETOOLONG", "[common]") {
  std::string path = "/tmp/" + std::string(200, 'x');
  auto c = ConnectUnix(path);
  REQUIRE_FALSE(c.ok());
  REQUIRE(c.error().sys_errno() == ENAMETOOLONG);
  REQUIRE(c.error().message() ==
          "unix socket path of 205 bytes is too long (at most 107): " + path);
  auto l = ListenUnix(path);
  REQUIRE_FALSE(l.ok());
  REQUIRE(l.error().sys_errno() == ENAMETOOLONG);
}

TEST_CASE("fds sent with the first byte arrive in order with it", "[common]") {
  auto [a, b] = SocketPair();
  auto p1 = MakePipe();
  auto p2 = MakePipe();
  REQUIRE(p1.ok());
  REQUIRE(p2.ok());
  int fds[] = {p1->second.get(), p2->first.get()};
  REQUIRE(SendWithFds(a.get(), "hello", fds).ok());
  REQUIRE(SendWithFds(a.get(), " world", {}).ok());

  char buf[64];
  std::vector<UniqueFd> got;
  auto n = RecvWithFds(b.get(), buf, sizeof buf, &got);
  REQUIRE(n.ok());
  REQUIRE(std::string(buf, *n).substr(0, 5) == "hello");
  REQUIRE(got.size() == 2);
  for (const auto& fd : got) REQUIRE((::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC) != 0);
  // got[0] is a new descriptor for p1's write end, got[1] for p2's read end.
  REQUIRE(WriteAll(got[0].get(), "via passed fd").ok());
  p1->second.Reset();
  got[0].Reset();
  auto text = ReadToEof(p1->first.get());
  REQUIRE(text.ok());
  REQUIRE(*text == "via passed fd");
  REQUIRE(WriteAll(p2->second.get(), "x").ok());
  char c = 0;
  REQUIRE(ReadExact(got[1].get(), &c, 1).ok());
  REQUIRE(c == 'x');
}

TEST_CASE("a large buffer with fds is sent whole across partial writes", "[common]") {
  auto [a, b] = SocketPair();
  auto p = MakePipe();
  REQUIRE(p.ok());
  std::string big(4 << 20, 'z');
  big[0] = 'A';
  big.back() = 'Z';
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int fd = p->first.get();
    _exit(SendWithFds(a.get(), big, std::span<const int>(&fd, 1)).ok() ? 0 : 1);
  }
  a.Reset();
  std::string got;
  std::vector<UniqueFd> fds;
  char buf[65536];
  for (;;) {
    auto n = RecvWithFds(b.get(), buf, sizeof buf, &fds);
    REQUIRE(n.ok());
    if (*n == 0) break;
    got.append(buf, *n);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  REQUIRE(got == big);
  REQUIRE(fds.size() == 1);
}

TEST_CASE("fds received without a place to put them are closed", "[common]") {
  auto [a, b] = SocketPair();
  auto p = MakePipe();
  REQUIRE(p.ok());
  int fd = p->first.get();
  REQUIRE(SendWithFds(a.get(), "x", std::span<const int>(&fd, 1)).ok());
  p->first.Reset();
  char c;
  auto n = RecvWithFds(b.get(), &c, 1, nullptr);
  REQUIRE(n.ok());
  REQUIRE(*n == 1);
  // No read end is left anywhere: writing reports a broken pipe.
  ::signal(SIGPIPE, SIG_IGN);
  REQUIRE(::write(p->second.get(), "y", 1) == -1);
  REQUIRE(errno == EPIPE);
}

TEST_CASE("fds without a byte to carry them are refused", "[common]") {
  auto [a, b] = SocketPair();
  int fd = 0;
  auto s = SendWithFds(a.get(), "", std::span<const int>(&fd, 1));
  REQUIRE_FALSE(s.ok());
  REQUIRE(s.error().sys_errno() == EINVAL);
}

TEST_CASE("a receiver out of fd slots reports truncated control data", "[common]") {
  auto [a, b] = SocketPair();
  int fds[] = {0, 1, 2};
  REQUIRE(SendWithFds(a.get(), "x", fds).ok());
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // No fd slot left: the kernel cannot install the passed fds.
    rlimit lim{static_cast<rlim_t>(b.get() + 1), static_cast<rlim_t>(b.get() + 1)};
    for (int fd = b.get() + 1; fd < 1024; ++fd) ::close(fd);
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) _exit(3);
    for (int fd = 0; fd < b.get(); ++fd) {
      if (::fcntl(fd, F_GETFD) < 0 && ::open("/dev/null", O_RDONLY) < 0) _exit(4);
    }
    char c;
    std::vector<UniqueFd> got;
    auto n = RecvWithFds(b.get(), &c, 1, &got);
    if (n.ok()) _exit(1);
    if (n.error().message().find("MSG_CTRUNC") == std::string::npos) _exit(2);
    _exit(got.empty() ? 0 : 5);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace mproxy
