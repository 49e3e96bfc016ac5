// AgentClient: spawn the agent, then poll() its stdin/stdout/stderr and move
// frames through a client-side Mux.
#include "tests/agent/agent_client.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <type_traits>

#include "common/io.h"
#include "proto/hello.h"

extern char** environ;

namespace mproxy::testing {
namespace {

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

std::optional<uint32_t> ChannelOf(const proto::Message& m) {
  return std::visit(
      [](const auto& msg) -> std::optional<uint32_t> {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, proto::ErrorMsg>) {
          return msg.channel;
        } else if constexpr (requires { msg.channel; }) {
          return msg.channel;
        } else {
          return std::nullopt;
        }
      },
      m);
}

}  // namespace

proto::Exec MakeExec(uint32_t channel, std::vector<std::string> argv) {
  proto::Exec e;
  e.channel = channel;
  e.path = argv.empty() ? "" : argv[0];
  e.argv = std::move(argv);
  e.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C"};
  e.fds = {{0, proto::FdSpec::kToChild, false},
           {1, proto::FdSpec::kFromChild, false},
           {2, proto::FdSpec::kFromChild, false}};
  return e;
}

AgentClient::AgentClient() : mux_(this, proto::MakeHello("agent-test", {"exec"})) {}

AgentClient::~AgentClient() {
  if (pid_ <= 0) return;
  // End the session the normal way, so the agent's exit path (and, in
  // sanitizer builds, its leak check) runs in every test.
  if (!agent_status_) {
    to_agent_.Reset();
    if (!WaitAgent(10000)) {
      kill(pid_, SIGKILL);
      int status;
      waitpid(pid_, &status, 0);
    }
  }
  if (agent_stderr.find("Sanitizer") != std::string::npos ||
      agent_stderr.find("runtime error:") != std::string::npos) {
    fprintf(stderr, "mproxy-agent reported a sanitizer error:\n%s\n", agent_stderr.c_str());
    std::abort();
  }
}

Status AgentClient::Start(const std::vector<std::string>& args) {
  auto in = MakePipe();
  auto out = MakePipe();
  auto err = MakePipe();
  if (!in || !out || !err) return Error("pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in->first.get(), 0);
  posix_spawn_file_actions_adddup2(&fa, out->second.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, err->second.get(), 2);
  std::vector<std::string> argv_s = {MPROXY_AGENT_PATH};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  int rc = posix_spawn(&pid_, MPROXY_AGENT_PATH, &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return Error::FromErrno("posix_spawn " MPROXY_AGENT_PATH, rc);
  to_agent_ = std::move(in->second);
  from_agent_ = std::move(out->first);
  agent_err_ = std::move(err->first);
  SetNonBlocking(to_agent_.get());
  SetNonBlocking(from_agent_.get());
  SetNonBlocking(agent_err_.get());
  if (!RunUntil([this] { return hello_received; })) {
    return Error("no Hello from the agent; stderr: " + agent_stderr);
  }
  return Ok();
}

void AgentClient::Send(const proto::Message& m) { (void)mux_.Send(m); }

void AgentClient::Write(uint32_t channel, uint32_t fd, std::string bytes, bool eof) {
  Pending& p = pending_[{channel, fd}];
  p.bytes.append(bytes);
  p.eof = p.eof || eof;
  FlushStream(channel, fd);
}

void AgentClient::FlushStream(uint32_t channel, uint32_t fd) {
  auto it = pending_.find({channel, fd});
  if (it == pending_.end()) return;
  Pending& p = it->second;
  while (p.off < p.bytes.size()) {
    size_t n = mux_.Write(channel, fd, std::string_view(p.bytes).substr(p.off));
    if (n == 0) return;  // OnWritable calls again
    p.off += n;
  }
  if (p.eof) mux_.WriteEof(channel, fd);
  pending_.erase(it);
}

Status AgentClient::WriteRaw(std::string_view bytes) {
  out_.append(bytes);
  return Ok();
}

void AgentClient::OnHello(const proto::Hello& peer, uint32_t) {
  hello_received = true;
  peer_hello = peer;
}

void AgentClient::OnMessage(proto::Message&& m) {
  if (auto* fs = std::get_if<proto::FsReply>(&m)) {
    fs_replies.push_back(std::move(*fs));
    return;
  }
  auto ch = ChannelOf(m);
  if (!ch) {
    messages.push_back(std::move(m));
    return;
  }
  ChannelLog& log = channels_[*ch];
  if (auto* s = std::get_if<proto::Started>(&m)) {
    log.started = *s;
  } else if (auto* e = std::get_if<proto::Exit>(&m)) {
    log.exit = *e;
  } else if (auto* err = std::get_if<proto::ErrorMsg>(&m)) {
    log.errors.push_back(*err);
  } else if (auto* st = std::get_if<proto::Stopped>(&m)) {
    log.stops.push_back(*st);
  }
}

void AgentClient::OnData(uint32_t channel, uint32_t fd, std::string_view bytes) {
  channels_[channel].out[fd].append(bytes);
  mux_.Consume(channel, fd, bytes.size());
}

void AgentClient::OnEof(uint32_t channel, uint32_t fd) { channels_[channel].eofs.insert(fd); }

void AgentClient::OnWritable(uint32_t channel, uint32_t fd) { FlushStream(channel, fd); }

bool AgentClient::PumpOnce(int timeout_ms) {
  if (out_off_ == out_.size() && mux_.HasOutput()) {
    out_.clear();
    out_off_ = 0;
    mux_.TakeOutput(&out_, 256 * 1024);
  }
  pollfd fds[3] = {{from_agent_.get(), POLLIN, 0},
                   {agent_err_.get(), POLLIN, 0},
                   {to_agent_.get(), static_cast<short>(out_off_ < out_.size() ? POLLOUT : 0), 0}};
  int n = poll(fds, 3, timeout_ms);
  if (n < 0) return errno == EINTR;
  char buf[65536];
  if (from_agent_ && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
    ssize_t r = read(from_agent_.get(), buf, sizeof buf);
    if (r > 0) {
      if (feed_status_) feed_status_ = mux_.Feed(std::string_view(buf, static_cast<size_t>(r)));
    } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
      from_agent_.Reset();
    }
  }
  if (agent_err_ && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
    ssize_t r = read(agent_err_.get(), buf, sizeof buf);
    if (r > 0) {
      agent_stderr.append(buf, static_cast<size_t>(r));
    } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
      agent_err_.Reset();
    }
  }
  if (to_agent_ && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
    ssize_t w = write(to_agent_.get(), out_.data() + out_off_, out_.size() - out_off_);
    if (w > 0) {
      out_off_ += static_cast<size_t>(w);
    } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
      to_agent_.Reset();
    }
  }
  return true;
}

bool AgentClient::RunUntil(const std::function<bool()>& done, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!done()) {
    if (!from_agent_) return done();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    PumpOnce(static_cast<int>(std::min<int64_t>(left.count(), 100)));
  }
  return true;
}

ChannelLog& AgentClient::Run(const proto::Exec& exec, const std::string& input, bool eof) {
  Send(exec);
  if (!input.empty() || eof) Write(exec.channel, 0, input, eof);
  ChannelLog& log = channels_[exec.channel];
  RunUntil([&log] { return log.exit.has_value(); });
  return log;
}

std::optional<proto::FsReply> AgentClient::FsCall(const proto::FsRequest& req, int timeout_ms) {
  Send(req);
  auto find = [this, id = req.id] {
    return std::find_if(fs_replies.begin(), fs_replies.end(),
                        [id](const proto::FsReply& r) { return r.id == id; });
  };
  if (!RunUntil([&] { return find() != fs_replies.end(); }, timeout_ms)) return std::nullopt;
  auto it = find();
  proto::FsReply reply = std::move(*it);
  fs_replies.erase(it);
  return reply;
}

void AgentClient::CloseStdin() {
  // Whatever is still queued goes first.
  RunUntil([this] { return out_off_ == out_.size() && !mux_.HasOutput(); }, 5000);
  to_agent_.Reset();
}

std::optional<int> AgentClient::WaitAgent(int timeout_ms) {
  if (agent_status_) return agent_status_;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int status;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      // Collect the rest of stdout and stderr.
      auto stop = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while ((agent_err_ || from_agent_) && std::chrono::steady_clock::now() < stop) PumpOnce(100);
      agent_status_ = status;
      return status;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    if (from_agent_ || agent_err_) {
      PumpOnce(20);
    } else {
      usleep(10000);
    }
  }
}

}  // namespace mproxy::testing
