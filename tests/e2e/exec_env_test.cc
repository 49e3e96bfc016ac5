// What the remote command finds around it under `mproxy exec`: the remote
// login environment plus TERM, LANG and LC_* from here, the working directory
// from -w, and a terminal only when asked for (or when stdio is one).
#include <pwd.h>

#include <catch2/catch.hpp>

#include "tests/e2e/child.h"
#include "tests/e2e/e2e_util.h"
#include "tests/support/sshd_fixture.h"

namespace mproxy::e2e {
namespace {

using std::chrono::seconds;
using testing::SshdFixture;

constexpr seconds kLimit(60);

Child::Result Exec(const SshdFixture& f, const std::vector<std::string>& cmd,
                   const std::vector<std::string>& opts = {},
                   const std::vector<std::string>& env = {}) {
  Child::Options o;
  o.argv = ExecArgv(f, cmd, opts);
  o.stdin_kind = Child::StdinKind::kFile;
  o.extra_env = env;
  return Child::Spawn(o)->Communicate("", kLimit);
}

TEST_CASE("the remote command gets the login environment plus TERM, LANG and LC_*", "[e2e]") {
  auto f = SshdFixture::StartOrSkip();
  INFO("sshd log:\n" << f->LogTail());
  struct passwd* pw = getpwnam(f->user().c_str());
  REQUIRE(pw != nullptr);
  const std::string home = pw->pw_dir;

  auto r = Exec(*f,
                {"sh", "-c",
                 "printf '%s|' \"$LANG\" \"$LC_E2E\" \"$FOO_E2E\" \"$TERM\" \"$HOME\" "
                 "\"$USER\" \"$PWD\""},
                {}, {"LANG=C.UTF-8", "LC_E2E=x y", "FOO_E2E=local only", "TERM=xterm-e2e"});
  CHECK(r.Status() == "exit 0");
  CHECK(r.out == "C.UTF-8|x y||xterm-e2e|" + home + "|" + f->user() + "|" + home + "|");
  CHECK(r.err == "");
}

TEST_CASE(
    "mproxy exec -w runs the command in that remote directory, and a missing one is a clear error",
    "[e2e]") {
  auto f = SshdFixture::StartOrSkip();
  INFO("sshd log:\n" << f->LogTail());
  auto ok = Exec(*f, {"pwd"}, {"-w", "/usr/share"});
  CHECK(ok.Status() == "exit 0");
  CHECK(ok.out == "/usr/share\n");

  auto missing = Exec(*f, {"pwd"}, {"-w", "/nonexistent-e2e"});
  CHECK(missing.Status() == "exit 127");
  CHECK(missing.out == "");
  CHECK(missing.err.rfind("mproxy: " + f->alias() + ": ", 0) == 0);
  CHECK(missing.err.find("/nonexistent-e2e") != std::string::npos);
  CHECK(CountOf(missing.err, "\n") == 1);
}

TEST_CASE("mproxy exec -t gives the remote command a terminal, and pipes alone do not", "[e2e]") {
  auto f = SshdFixture::StartOrSkip();
  INFO("sshd log:\n" << f->LogTail());
  const std::string probe =
      "test -t 0 && echo in-tty; test -t 1 && echo out-tty; stty size; exit 5";

  auto tty = Exec(*f, {"sh", "-c", probe}, {"-t"});
  CHECK(tty.Status() == "exit 5");
  // A pty turns \n into \r\n; with no terminal here the size is the default.
  CHECK(tty.out == "in-tty\r\nout-tty\r\n24 80\r\n");

  auto plain = Exec(*f, {"sh", "-c", "test -t 0 || test -t 1 || echo no-tty"});
  CHECK(plain.Status() == "exit 0");
  CHECK(plain.out == "no-tty\n");
}

}  // namespace
}  // namespace mproxy::e2e
