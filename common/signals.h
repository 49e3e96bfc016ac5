// Signal names on the wire ("INT", "TERM", ...) and their numbers on this
// host. Names travel instead of numbers because numbers differ between
// architectures (e.g. SIGUSR1 is 10 on x86 and 16 on MIPS).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mproxy {

// The signal number for a name without the "SIG" prefix ("INT"), or nullopt
// for a name this host does not know. Also accepts "RTMIN+n".
std::optional<int> SignalFromName(std::string_view name);

// The wire name of `signo` ("TERM"), "RTMIN+n" for realtime signals, or the
// decimal number for anything else.
std::string SignalName(int signo);

}  // namespace mproxy
