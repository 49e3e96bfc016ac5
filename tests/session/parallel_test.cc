// Many remote commands at once in one session: 64 background jobs of one
// bash, each with its own output and exit code.
#include <catch2/catch.hpp>

#include "tests/session/session_fixture.h"

namespace mproxy::session_test {
namespace {

void ParallelCommands(As as) {
  SessionFixture s(as);
  INFO(s.Diagnostics());
  auto r = s.Bash("for i in $(seq 64); do { cat \"$M\" || echo FAILED; } & done; wait");
  CHECK(r.Status() == "exit 0");
  std::string expected;
  for (int i = 0; i < 64; ++i) expected += s.MarkerText();
  CHECK(r.out.size() == expected.size());
  CHECK(r.out == expected);
  CHECK(r.err == "");

  // Each one gets its own output and its own exit code back.
  auto codes = s.Bash(
      "pids=()\n"
      "for i in $(seq 64); do\n"
      "  sh -c 'echo \"$1\"; exit $(($1 % 7))' sh \"$i\" >\"$T/out.$i\" & pids+=($!)\n"
      "done\n"
      "bad=0\n"
      "for i in $(seq 64); do\n"
      "  wait \"${pids[i-1]}\"; st=$?\n"
      "  if [ \"$st\" != $((i % 7)) ] || [ \"$(<\"$T/out.$i\")\" != \"$i\" ]; then\n"
      "    echo \"command $i: status $st, output $(<\"$T/out.$i\")\"; bad=$((bad + 1))\n"
      "  fi\n"
      "done\n"
      "echo \"bad $bad\"\n");
  CHECK(codes.Status() == "exit 0");
  CHECK(codes.out == "bad 0\n");
  CHECK(codes.err == "");
}
SESSION_TEST_CASE("64 remote commands at once all give the right output and exit code",
                  ParallelCommands)

}  // namespace
}  // namespace mproxy::session_test
