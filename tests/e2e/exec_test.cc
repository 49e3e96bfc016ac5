// `mproxy exec` against a real sshd: exit codes, stdout/stderr, stdin and EOF,
// a missing command, where the command ran, and a connection that dies.
#include <catch2/catch.hpp>

#include "tests/e2e/child.h"
#include "tests/e2e/e2e_util.h"
#include "tests/support/sshd_fixture.h"

namespace mproxy::e2e {
namespace {

using std::chrono::seconds;
using testing::SshdFixture;

constexpr seconds kLimit(60);  // anti-hang only

Child::Result Exec(const SshdFixture& f, const std::vector<std::string>& cmd,
                   std::string input = "") {
  Child::Options o;
  o.argv = ExecArgv(f, cmd);
  return Child::Spawn(o)->Communicate(std::move(input), kLimit);
}

TEST_CASE("mproxy exec returns the remote exit code, and 128+n for a signal", "[e2e]") {
  auto f = SshdFixture::StartOrSkip();
  INFO("sshd log:\n" << f->LogTail());

  auto ok = Exec(*f, {"sh", "-c", "exit 0"});
  CHECK(ok.Status() == "exit 0");
  CHECK(ok.out == "");
  CHECK(ok.err == "");

  auto r42 = Exec(*f, {"sh", "-c", "exit 42"});
  CHECK(r42.Status() == "exit 42");
  CHECK(r42.err == "");

  auto term = Exec(*f, {"sh", "-c", "kill -TERM $$"});
  CHECK(term.Status() == "exit 143");
  CHECK(term.err == "");

  auto killed = Exec(*f, {"sh", "-c", "kill -KILL $$"});
  CHECK(killed.Status() == "exit 137");
  CHECK(killed.err == "");
}

TEST_CASE("mproxy exec keeps the remote stdout and stderr apart", "[e2e]") {
  auto f = SshdFixture::StartOrSkip();
  INFO("sshd log:\n" << f->LogTail());
  auto r = Exec(*f, {"sh", "-c",
                     "printf 'to out\\n'; printf 'to err\\n' >&2; printf 'more out'; "
                     "printf 'more err' >&2; exit 3"});
  CHECK(r.Status() == "exit 3");
  CHECK(r.out == "to out\nmore out");
  CHECK(r.err == "to err\nmore err");
}

TEST_CASE("mproxy exec passes argv through exactly, without a remote shell", "[e2e]") {
  auto f = SshdFixture::StartOrSkip();
  INFO("sshd log:\n" << f->LogTail());
  // Spaces, quotes, globs and `$` would all be mangled by `ssh host cmd`.
  auto r = Exec(*f, {"printf", "[%s]\\n", "a b", "'q'", "*", "$HOME", ""});
  CHECK(r.Status() == "exit 0");
  CHECK(r.out == "[a b]\n['q']\n[*]\n[$HOME]\n[]\n");
}

TEST_CASE("mproxy exec pipes stdin to the remote command and delivers EOF", "[e2e]") {
  auto f = SshdFixture::StartOrSkip();
  INFO("sshd log:\n" << f->LogTail());

  std::string input("hello\0world\n", 12);
  std::string noise;
  Prng(7).Fill(&noise, 300 * 1024);
  input += noise;
  auto cat = Exec(*f, {"cat"}, input);
  CHECK(cat.Status() == "exit 0");
  CHECK(cat.out.size() == input.size());
  CHECK(cat.out == input);
  CHECK(cat.err == "");

  auto wc = Exec(*f, {"wc", "-c"}, std::string(100000, 'x'));
  CHECK(wc.Status() == "exit 0");
  CHECK(wc.out == "100000\n");

  // Nothing at all on stdin: cat sees EOF at once.
  auto empty = Exec(*f, {"cat"}, "");
  CHECK(empty.Status() == "exit 0");
  CHECK(empty.out == "");
}

TEST_CASE("mproxy exec returns when the command never reads its endless stdin", "[e2e]") {
  auto f = SshdFixture::StartOrSkip();
  INFO("sshd log:\n" << f->LogTail());

  SECTION("stdin is a pipe that stays open and silent") {
    Child::Options o;
    o.argv = ExecArgv(*f, {"echo", "x"});
    auto c = Child::Spawn(o);
    std::string out, err;
    auto outcome = c->Pump(
        nullptr, [&](std::string_view b) { out.append(b); },
        [&](std::string_view b) { err.append(b); }, kLimit, /*keep_stdin_open=*/true);
    CHECK(outcome.Describe() == "exit 0");
    CHECK(out == "x\n");
    CHECK(err == "");
  }
  SECTION("stdin is a pipe that is written without end") {
    Child::Options o;
    o.argv = ExecArgv(*f, {"echo", "x"});
    auto c = Child::Spawn(o);
    std::string out, err;
    const std::string block(64 * 1024, 'y');
    auto outcome = c->Pump(
        [&](std::string* chunk) {
          *chunk = block;
          return true;
        },
        [&](std::string_view b) { out.append(b); }, [&](std::string_view b) { err.append(b); },
        kLimit);
    CHECK(outcome.Describe() == "exit 0");
    CHECK(out == "x\n");
    CHECK(err == "");
  }
  SECTION("stdin is /dev/zero") {
    Child::Options o;
    o.argv = ExecArgv(*f, {"echo", "x"});
    o.stdin_kind = Child::StdinKind::kFile;
    o.stdin_file = "/dev/zero";
    auto r = Child::Spawn(o)->Communicate("", kLimit);
    CHECK(r.Status() == "exit 0");
    CHECK(r.out == "x\n");
    CHECK(r.err == "");
  }
}

TEST_CASE("mproxy exec of a missing command exits 127 with one clear line", "[e2e]") {
  auto f = SshdFixture::StartOrSkip();
  INFO("sshd log:\n" << f->LogTail());
  auto r = Exec(*f, {"nosuchcmd-xyz", "arg"});
  CHECK(r.Status() == "exit 127");
  CHECK(r.out == "");
  CHECK(r.err == "mproxy: nosuchcmd-xyz: command not found on " + f->alias() + "\n");
}

TEST_CASE("mproxy exec runs the command on the remote side", "[e2e]") {
  auto f = SshdFixture::StartOrSkip();
  if (f->marker_path().empty()) testing::Skip("the sshd fixture has no mount namespace here");
  INFO("sshd log:\n" << f->LogTail());
  // The marker exists only in sshd's mount namespace.
  REQUIRE(access(f->marker_path().c_str(), F_OK) != 0);
  auto r = Exec(*f, {"cat", f->marker_path()});
  CHECK(r.Status() == "exit 0");
  CHECK(r.out == "mproxy remote side, port " + std::to_string(f->port()) + "\n");
  CHECK(r.err == "");
}

TEST_CASE("mproxy exec exits 255 with one line when the connection dies mid-command", "[e2e]") {
  auto f = SshdFixture::StartOrSkip();
  INFO("sshd log:\n" << f->LogTail());
  const std::vector<std::string> sleeper = {"sleep", UniqueSleep(100)};
  Child::Options o;
  o.argv = ExecArgv(*f, sleeper);
  o.stdin_kind = Child::StdinKind::kFile;
  auto c = Child::Spawn(o);
  REQUIRE(WaitForProcess(sleeper, seconds(30)));

  REQUIRE(f->Stop().ok());
  auto r = c->Communicate("", kLimit);
  CHECK(r.Status() == "exit 255");
  CHECK(r.out == "");
  CHECK(r.err.rfind("mproxy: ", 0) == 0);
  CHECK(CountOf(r.err, "\n") == 1);
  CHECK(r.err.back() == '\n');
  CHECK(r.err.find(f->alias()) != std::string::npos);
}

}  // namespace
}  // namespace mproxy::e2e
