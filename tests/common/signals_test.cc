// Signal name <-> number mapping.
#include "common/signals.h"

#include <catch2/catch.hpp>
#include <csignal>

namespace mproxy {
namespace {

TEST_CASE("signal names map to this host's numbers and back", "[common]") {
  for (const char* name : {"HUP", "INT", "QUIT", "KILL", "USR1", "USR2", "PIPE", "ALRM", "TERM",
                           "CONT", "STOP", "TSTP", "WINCH", "SEGV", "ABRT"}) {
    auto n = SignalFromName(name);
    REQUIRE(n.has_value());
    CHECK(SignalName(*n) == name);
  }
  CHECK(SignalFromName("INT") == SIGINT);
  CHECK(SignalFromName("SIGTERM") == SIGTERM);
  CHECK(SignalName(SIGRTMIN + 2) == "RTMIN+2");
  CHECK(SignalFromName("RTMIN+2") == SIGRTMIN + 2);
}

TEST_CASE("unknown signal names are refused, not guessed", "[common]") {
  CHECK_FALSE(SignalFromName("").has_value());
  CHECK_FALSE(SignalFromName("NOPE").has_value());
  CHECK_FALSE(SignalFromName("int").has_value());
  CHECK_FALSE(SignalFromName("RTMIN+").has_value());
  CHECK_FALSE(SignalFromName("RTMIN+999").has_value());
  CHECK_FALSE(SignalFromName("9").has_value());
}

}  // namespace
}  // namespace mproxy
