// Sample shim messages: full and empty forms of each type.
#include "tests/fakes/shim_samples.h"

namespace mproxy::testing {

std::vector<proto::shim::Message> ShimSampleMessages() {
  using namespace proto::shim;
  Request req;
  req.exe = "/run/mproxy/stubs/grep";
  req.argv = {"grep", "-n", std::string("a\0b", 3), "", "\xff\xfe"};
  req.env = {"PATH=/usr/bin", "EMPTY=", "MPROXY_SOCK=/run/mproxy/sock"};
  req.cwd = "/home/me/src";
  req.fds = {{0, Fd::Mode::kTerminal, true},
             {1, Fd::Mode::kPassed, false},
             {2, Fd::Mode::kTerminal, false},
             {7, Fd::Mode::kPassed, true}};
  req.term = "xterm-256color";
  req.rows = 50;
  req.cols = 132;
  Exit by_signal;
  by_signal.code = 130;
  by_signal.signal = "INT";
  by_signal.core = true;
  return {req,
          Request{},
          Input{std::string("ls\r\x03\0", 5)},
          Input{},
          InputEof{},
          Signal{"TSTP"},
          Resize{24, 80},
          Output{1, std::string(1000, 'o')},
          Output{2, ""},
          Exit{42, std::nullopt, false, "mproxy: grep: command not found on build-box"},
          by_signal,
          Stopped{"TSTP"}};
}

}  // namespace mproxy::testing
