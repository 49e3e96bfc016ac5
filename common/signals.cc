// Name <-> number table for the signals the protocol can carry.
#include "common/signals.h"

#include <csignal>
#include <cstdlib>

namespace mproxy {
namespace {

struct SignalEntry {
  const char* name;
  int signo;
};

constexpr SignalEntry kSignals[] = {
    {"HUP", SIGHUP},     {"INT", SIGINT},       {"QUIT", SIGQUIT},   {"ILL", SIGILL},
    {"TRAP", SIGTRAP},   {"ABRT", SIGABRT},     {"BUS", SIGBUS},     {"FPE", SIGFPE},
    {"KILL", SIGKILL},   {"USR1", SIGUSR1},     {"SEGV", SIGSEGV},   {"USR2", SIGUSR2},
    {"PIPE", SIGPIPE},   {"ALRM", SIGALRM},     {"TERM", SIGTERM},   {"CHLD", SIGCHLD},
    {"CONT", SIGCONT},   {"STOP", SIGSTOP},     {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU},   {"URG", SIGURG},       {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},   {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"PWR", SIGPWR},     {"SYS", SIGSYS},
};

constexpr std::string_view kRtPrefix = "RTMIN+";

}  // namespace

std::optional<int> SignalFromName(std::string_view name) {
  if (name.substr(0, 3) == "SIG") name.remove_prefix(3);
  for (const auto& e : kSignals) {
    if (name == e.name) return e.signo;
  }
  if (name.substr(0, kRtPrefix.size()) == kRtPrefix) {
    std::string_view digits = name.substr(kRtPrefix.size());
    if (digits.empty() || digits.size() > 2) return std::nullopt;
    int n = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return std::nullopt;
      n = n * 10 + (c - '0');
    }
    if (SIGRTMIN + n > SIGRTMAX) return std::nullopt;
    return SIGRTMIN + n;
  }
  return std::nullopt;
}

std::string SignalName(int signo) {
  for (const auto& e : kSignals) {
    if (signo == e.signo) return e.name;
  }
  if (signo >= SIGRTMIN && signo <= SIGRTMAX) {
    return std::string(kRtPrefix) + std::to_string(signo - SIGRTMIN);
  }
  return std::to_string(signo);
}

}  // namespace mproxy
