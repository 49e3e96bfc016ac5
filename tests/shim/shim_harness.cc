// Fake broker, shim launcher and bounded waits for the shim tests.
#include "tests/shim/shim_harness.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <thread>

#include "common/io.h"
#include "common/unix_socket.h"

namespace mproxy::testing {
namespace {

namespace wire = proto::shim;
using Clock = std::chrono::steady_clock;

int MsLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// False when nothing became readable before the deadline.
bool WaitReadable(int fd, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, MsLeft(deadline));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

}  // namespace

std::optional<wire::Message> ShimConnection::Next(int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto m = decoder.Next();
    REQUIRE(m.ok());
    if (m->has_value()) return std::move(**m);
    if (!WaitReadable(sock.get(), deadline)) return std::nullopt;
    char buf[65536];
    auto n = RecvWithFds(sock.get(), buf, sizeof buf, nullptr);
    if (!n.ok() || *n == 0) return std::nullopt;
    decoder.Feed(std::string_view(buf, *n));
  }
}

void ShimConnection::Send(const wire::Message& m) {
  REQUIRE(SendWithFds(sock.get(), wire::Encode(m), {}).ok());
}

int ShimConnection::Passed(uint32_t fd) const {
  size_t i = 0;
  for (const auto& f : request.fds) {
    if (f.mode != wire::Fd::Mode::kPassed) continue;
    if (f.fd == fd) return i < fds.size() ? fds[i].get() : -1;
    ++i;
  }
  return -1;
}

FakeBroker::FakeBroker(const std::string& dir) : path_(dir + "/broker.sock") {
  auto l = ListenUnix(path_);
  REQUIRE(l.ok());
  listener_ = std::move(*l);
}

ShimConnection FakeBroker::Accept() {
  auto deadline = Clock::now() + std::chrono::milliseconds(kTimeoutMs);
  REQUIRE(WaitReadable(listener_.get(), deadline));
  auto sock = AcceptUnix(listener_.get());
  REQUIRE(sock.ok());
  ShimConnection c;
  c.sock = std::move(*sock);
  for (;;) {
    auto m = c.decoder.Next();
    REQUIRE(m.ok());
    if (m->has_value()) {
      REQUIRE(std::holds_alternative<wire::Request>(**m));
      c.request = std::get<wire::Request>(std::move(**m));
      return c;
    }
    REQUIRE(WaitReadable(c.sock.get(), deadline));
    char buf[65536];
    auto n = RecvWithFds(c.sock.get(), buf, sizeof buf, &c.fds);
    REQUIRE(n.ok());
    REQUIRE(*n > 0);
    c.decoder.Feed(std::string_view(buf, *n));
  }
}

pid_t StartShim(const ShimLaunch& launch) {
  // Everything the child needs is built before fork(): after it, only
  // async-signal-safe calls.
  std::vector<char*> argv;
  for (const auto& a : launch.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> env;
  for (const auto& e : launch.env) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);
  std::vector<std::pair<int, int>> fds(launch.fds.begin(), launch.fds.end());
  int top = fds.empty() ? -1 : fds.back().first;
  std::vector<int> tmp(fds.size(), -1);

  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid != 0) return pid;

  if (launch.controlling_terminal && ::setsid() < 0) _exit(120);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int s = 1; s < NSIG; ++s) ::signal(s, SIG_DFL);
  for (int s : launch.ignored_signals) ::signal(s, SIG_IGN);
  for (size_t i = 0; i < fds.size(); ++i) {
    tmp[i] = ::fcntl(fds[i].second, F_DUPFD_CLOEXEC, 100);
    if (tmp[i] < 0) _exit(121);
  }
  for (int fd = 0; fd <= top; ++fd) ::close(fd);
  for (size_t i = 0; i < fds.size(); ++i) {
    if (::dup2(tmp[i], fds[i].first) < 0) _exit(122);
  }
  ::close_range(static_cast<unsigned>(top + 1), ~0u, 0);
  if (launch.controlling_terminal) {
    int tty = -1;
    for (int fd = 0; fd <= 2 && tty < 0; ++fd) {
      if (::isatty(fd)) tty = fd;
    }
    if (tty < 0 || ::ioctl(tty, TIOCSCTTY, 0) != 0) _exit(123);
    if (launch.job_shell) {
      pid_t shim = ::fork();
      if (shim < 0) _exit(126);
      if (shim == 0) {
        // In the foreground before exec, so the shim finds itself there.
        ::setpgid(0, 0);
        ::signal(SIGTTOU, SIG_IGN);
        if (::tcsetpgrp(tty, ::getpid()) != 0) _exit(127);
        ::signal(SIGTTOU, SIG_DFL);
      } else {
        ::setpgid(shim, shim);
        for (;;) {
          int status = 0;
          if (::waitpid(shim, &status, WUNTRACED) < 0) {
            if (errno == EINTR) continue;
            _exit(128);
          }
          if (WIFSTOPPED(status)) {
            ::raise(SIGSTOP);
            ::kill(shim, SIGCONT);
            continue;
          }
          if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
          ::signal(WTERMSIG(status), SIG_DFL);
          ::raise(WTERMSIG(status));
          _exit(129);
        }
      }
    }
  }
  if (!launch.cwd.empty() && ::chdir(launch.cwd.c_str()) != 0) _exit(124);
  ::execve(launch.program.c_str(), argv.data(), env.data());
  _exit(125);
}

int WaitShim(pid_t pid, bool stopped) {
  auto deadline = Clock::now() + std::chrono::milliseconds(kTimeoutMs);
  int flags = WNOHANG | (stopped ? WUNTRACED : 0);
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, flags);
    if (r == pid) return status;
    REQUIRE(r == 0);
    if (Clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      FAIL("the shim did not end within " << kTimeoutMs << " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

std::string ReadAll(int fd) {
  auto deadline = Clock::now() + std::chrono::milliseconds(kTimeoutMs);
  std::string out;
  for (;;) {
    REQUIRE(WaitReadable(fd, deadline));
    char buf[4096];
    auto n = ReadSome(fd, buf, sizeof buf);
    REQUIRE(n.ok());
    if (*n == 0) return out;
    out.append(buf, *n);
  }
}

std::string ReadUntil(int fd, const std::string& want) {
  auto deadline = Clock::now() + std::chrono::milliseconds(kTimeoutMs);
  std::string out;
  while (out.find(want) == std::string::npos) {
    if (!WaitReadable(fd, deadline)) break;
    char buf[4096];
    auto n = ReadSome(fd, buf, sizeof buf);
    if (!n.ok() || *n == 0) break;
    out.append(buf, *n);
  }
  return out;
}

std::string ShimBinary() { return MPROXY_TEST_SHIM; }

std::string LinkCommand(const std::string& dir, const std::string& name) {
  std::string link = dir + "/" + name;
  REQUIRE(::symlink(ShimBinary().c_str(), link.c_str()) == 0);
  return link;
}

}  // namespace mproxy::testing
