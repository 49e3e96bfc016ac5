// DescribeExit.
#include "broker/remote_exit.h"

#include "common/signals.h"

namespace mproxy::broker {

RemoteExit DescribeExit(const proto::Exit& exit, const std::string& host_label) {
  RemoteExit r;
  if (exit.signal) {
    auto signo = SignalFromName(*exit.signal);
    if (signo) {
      r.status = 128 + *signo;
      r.signal = *exit.signal;
      r.core = exit.core_dumped;
    } else {
      r.status = 255;
      r.message = host_label + ": command killed by unknown signal " + *exit.signal;
    }
  } else if (exit.code) {
    r.status = *exit.code & 0xff;
  }
  if (!exit.error.empty()) {
    static constexpr std::string_view kNotFound = "command not found";
    const std::string& text = exit.error;
    if (text.size() >= kNotFound.size() &&
        text.compare(text.size() - kNotFound.size(), kNotFound.size(), kNotFound) == 0) {
      r.message = text + " on " + host_label;
    } else {
      r.message = host_label + ": " + text;
    }
  }
  return r;
}

}  // namespace mproxy::broker
