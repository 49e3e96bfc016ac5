// Remote exec over one mproxy session: per-command round trip, stdout
// throughput, and many commands at once, all over a single connection.
//
// Usage: exec_bench [-F CONFIG] HOST [--n 1000] [--parallel 100]
//                   [--file PATH] [--parallel-cmd 'sleep 0.5'] [--no-raw]
//
// Connects once (SSH, agent deploy, agent start: not measured), then prints
// one `name value` line per measurement:
//   rtt_*           N sequential `true`: Exec sent -> Exit received, in ms
//   cat_*           `cat FILE` through the agent (Exec -> Exit), bytes and MB/s
//   *_cpu_s_per_gb  CPU seconds this process spent per GB received
//   raw_cat_*       the same file over a bare libssh exec channel on the same
//                   SSH connection, no agent (skipped with --no-raw)
//   parallel*_*     --parallel commands opened at once: failures, wall time
// MB are 10^6 bytes. All commands go through the same library calls as
// `mproxy exec` (broker::Connect, AgentLink::OpenExec).
#include <sys/resource.h>
#include <uv.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "broker/agent_link.h"
#include "broker/cli.h"
#include "broker/connect.h"
#include "broker/logging.h"
#include "broker/ssh_transport.h"

using namespace mproxy;
using namespace mproxy::broker;

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// CPU seconds (user + system) this process has used so far, all threads.
double CpuSeconds() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "exec_bench: %s\n", why.c_str());
  std::exit(1);
}

// One remote command: stdin at EOF right away (like `mproxy exec ... </dev/null`),
// stdout and stderr counted and consumed at once.
class Command : public ChannelHandler {
 public:
  Command(uv_loop_t* loop, AgentLink* link, int* running)
      : loop_(loop), link_(link), running_(running) {}

  void Start(std::vector<std::string> argv) {
    proto::Exec exec;
    exec.path = argv[0];
    exec.argv = std::move(argv);
    exec.inherit_env = true;
    exec.fds = {{0, proto::FdSpec::kToChild, false},
                {1, proto::FdSpec::kFromChild, false},
                {2, proto::FdSpec::kFromChild, false}};
    auto ch = link_->OpenExec(std::move(exec), this);
    if (!ch) {
      error_ = ch.error().message();
      return Done();
    }
    channel_ = *ch;
    link_->WriteEof(channel_, 0);
  }

  void OnData(uint32_t fd, std::string_view bytes) override {
    if (fd == 1) {
      stdout_bytes_ += bytes.size();
    } else {
      stderr_.append(bytes.substr(0, 200));
    }
    link_->Consume(channel_, fd, bytes.size());
  }
  void OnEof(uint32_t) override {}
  void OnWritable(uint32_t) override {}
  void OnExit(const proto::Exit& exit) override {
    if (exit.code) code_ = *exit.code;
    if (exit.signal) error_ = "killed by SIG" + *exit.signal;
    if (!exit.error.empty()) error_ = exit.error;
    Done();
  }
  void OnChannelError(const proto::ErrorMsg& err) override { error_ = err.text; }
  void OnLost(const Status& why) override {
    error_ = why.ok() ? "session lost" : why.error().message();
    Done();
  }

  bool ok() const { return finished_ && error_.empty() && code_ == 0; }
  std::string Why() const {
    if (!error_.empty()) return error_;
    return "exit code " + std::to_string(code_) + (stderr_.empty() ? "" : ": " + stderr_);
  }
  uint64_t stdout_bytes() const { return stdout_bytes_; }

 private:
  void Done() {
    if (finished_) return;
    finished_ = true;
    if (--*running_ == 0) uv_stop(loop_);
  }

  uv_loop_t* loop_;
  AgentLink* link_;
  int* running_;
  uint32_t channel_ = 0;
  bool finished_ = false;
  int code_ = -1;
  std::string error_;
  std::string stderr_;
  uint64_t stdout_bytes_ = 0;
};

// Runs the commands concurrently; returns once all have ended.
std::vector<std::unique_ptr<Command>> RunAll(uv_loop_t* loop, AgentLink* link,
                                             const std::vector<std::vector<std::string>>& cmds) {
  std::vector<std::unique_ptr<Command>> out;
  int running = static_cast<int>(cmds.size());
  for (const auto& argv : cmds) {
    out.push_back(std::make_unique<Command>(loop, link, &running));
    out.back()->Start(argv);
  }
  if (running > 0) uv_run(loop, UV_RUN_DEFAULT);
  return out;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

std::vector<std::string> SplitWords(const std::string& s) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) words.push_back(s.substr(i, j - i));
    i = j;
  }
  return words;
}

void Print(const char* name, double value) { std::printf("%s %.3f\n", name, value); }
void PrintInt(const char* name, uint64_t value) {
  std::printf("%s %llu\n", name, static_cast<unsigned long long>(value));
}

// `cat FILE` on a fresh libssh exec channel of the session's SSH connection:
// what libssh alone delivers, without the agent or its framing.
void RawCat(SshConnection* ssh, const std::string& file) {
  struct Shared {
    std::atomic<uint64_t> bytes{0};
    std::promise<Status> done;
  };
  auto shared = std::make_shared<Shared>();
  auto finished = shared->done.get_future();
  ExecCallbacks cb;
  cb.on_stdout = [shared](std::string_view d) { shared->bytes += d.size(); };
  cb.on_closed = [shared](const Status& s) { shared->done.set_value(s); };
  double cpu0 = CpuSeconds();
  auto start = Clock::now();
  auto id = ssh->OpenExec("cat " + ShellQuote(file), std::move(cb));
  if (!id) Die("raw cat: " + id.error().message());
  Status s = finished.get();
  double secs = Ms(Clock::now() - start) / 1000;
  if (!s.ok()) Die("raw cat: " + s.error().message());
  PrintInt("raw_cat_bytes", shared->bytes.load());
  Print("raw_cat_mbps", static_cast<double>(shared->bytes.load()) / secs / 1e6);
  Print("raw_cat_cpu_s_per_gb",
        (CpuSeconds() - cpu0) / (static_cast<double>(shared->bytes.load()) / 1e9));
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  ConnectOptions copts;
  int n = 1000;
  int parallel = 100;
  std::string file;
  std::string parallel_cmd = "sleep 0.5";
  bool raw = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Die(a + " needs a value");
      return argv[++i];
    };
    if (a == "-F") {
      copts.ssh_config = value();
    } else if (a == "--n") {
      n = std::atoi(value().c_str());
    } else if (a == "--parallel") {
      parallel = std::atoi(value().c_str());
    } else if (a == "--file") {
      file = value();
    } else if (a == "--parallel-cmd") {
      parallel_cmd = value();
    } else if (a == "--no-raw") {
      raw = false;
    } else if (a == "--transport") {
      copts.transport = value();
    } else if (!a.empty() && a[0] != '-' && copts.target.empty()) {
      copts.target = a;
    } else {
      Die("usage: exec_bench [-F CONFIG] HOST [--n N] [--parallel P] [--file PATH] "
          "[--parallel-cmd CMD] [--no-raw] [--transport ssh|local]");
    }
  }
  if (copts.target.empty() && copts.transport == "ssh") Die("no HOST given");
  if (n < 1 || parallel < 0) Die("--n must be >= 1 and --parallel >= 0");
  if (auto s = SetupLogging("warn", ""); !s) Die(s.error().message());

  auto conn = Connect(copts);
  if (!conn) Die(conn.error().message());
  auto* ssh_transport = dynamic_cast<SshTransport*>(conn->transport.get());
  uv_loop_t* loop = uv_default_loop();
  int rc = 0;
  {
    AgentLink link(loop, std::move(conn->agent_stream), conn->label);
    bool lost = false;
    link.Start([&](const proto::Hello&) { uv_stop(loop); },
               [&](const Status& why) {
                 lost = true;
                 std::fprintf(stderr, "exec_bench: %s\n", why.error().message().c_str());
                 uv_stop(loop);
               });
    uv_run(loop, UV_RUN_DEFAULT);
    if (lost || !link.ready()) Die("no agent session");

    // (a) round trip of sequential `true`, after a short warm-up.
    const std::vector<std::vector<std::string>> one_true = {{"true"}};
    for (int i = 0; i < 20; ++i) {
      auto r = RunAll(loop, &link, one_true);
      if (!r[0]->ok()) Die("warm-up `true` failed: " + r[0]->Why());
    }
    std::vector<double> rtt;
    rtt.reserve(static_cast<size_t>(n));
    auto seq_start = Clock::now();
    for (int i = 0; i < n; ++i) {
      auto t0 = Clock::now();
      auto r = RunAll(loop, &link, one_true);
      rtt.push_back(Ms(Clock::now() - t0));
      if (!r[0]->ok()) Die("`true` failed: " + r[0]->Why());
    }
    double seq_ms = Ms(Clock::now() - seq_start);
    PrintInt("rtt_n", static_cast<uint64_t>(n));
    Print("rtt_median_ms", Percentile(rtt, 0.5));
    Print("rtt_p90_ms", Percentile(rtt, 0.9));
    Print("rtt_p99_ms", Percentile(rtt, 0.99));
    Print("rtt_min_ms", Percentile(rtt, 0));
    Print("rtt_mean_ms", seq_ms / n);

    // (b) stdout throughput of one `cat FILE`.
    if (!file.empty()) {
      double cpu0 = CpuSeconds();
      auto t0 = Clock::now();
      auto r = RunAll(loop, &link, {{"cat", file}});
      double secs = Ms(Clock::now() - t0) / 1000;
      if (!r[0]->ok()) Die("cat failed: " + r[0]->Why());
      PrintInt("cat_bytes", r[0]->stdout_bytes());
      Print("cat_mbps", static_cast<double>(r[0]->stdout_bytes()) / secs / 1e6);
      Print("cat_cpu_s_per_gb",
            (CpuSeconds() - cpu0) / (static_cast<double>(r[0]->stdout_bytes()) / 1e9));
      if (raw && ssh_transport != nullptr) RawCat(&ssh_transport->connection(), file);
    }

    // (c) many commands at once on the one session: `true`, then one that
    // lasts (all must overlap).
    if (parallel > 0) {
      struct Case {
        const char* name;
        std::vector<std::string> argv;
      };
      for (const Case& c : {Case{"parallel_true", {"true"}},
                            Case{"parallel_cmd", SplitWords(parallel_cmd)}}) {
        std::vector<std::vector<std::string>> cmds(static_cast<size_t>(parallel), c.argv);
        auto t0 = Clock::now();
        auto r = RunAll(loop, &link, cmds);
        double wall = Ms(Clock::now() - t0);
        uint64_t failures = 0;
        std::string first_failure;
        for (const auto& cmd : r) {
          if (cmd->ok()) continue;
          if (failures++ == 0) first_failure = cmd->Why();
        }
        std::string name = c.name;
        PrintInt((name + "_n").c_str(), static_cast<uint64_t>(parallel));
        PrintInt((name + "_failures").c_str(), failures);
        Print((name + "_wall_ms").c_str(), wall);
        if (failures > 0) {
          std::fprintf(stderr, "exec_bench: %s: first failure: %s\n", c.name,
                       first_failure.c_str());
          rc = 1;
        }
      }
    }
    std::fflush(stdout);
  }
  uv_run(loop, UV_RUN_NOWAIT);
  return rc;
}
