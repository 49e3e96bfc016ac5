// Session: stdin/stdout framing through the Mux, channels, and session end.
#include "agent/session.h"

#include <fcntl.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "agent/child.h"
#include "agent/log.h"
#include "agent/path_query.h"
#include "common/signals.h"
#include "proto/fs.h"
#include "proto/hello.h"

namespace mproxy::agent {
namespace {

constexpr size_t kInputBufferSize = 64 * 1024;
// Bytes taken from the mux per write to stdout.
constexpr size_t kOutputBatch = 256 * 1024;
constexpr int kStdoutPipeSize = 1024 * 1024;
// File-operation replies wait in the FsServer while this many bytes of
// control frames are queued: enough to keep stdout busy, and far below the
// mux's kMaxControlBacklog, which would end the session.
constexpr size_t kFsReplyBacklog = 1024 * 1024;

// libuv aborts on fds epoll cannot watch (regular files, /dev/null), so
// refuse them up front with a message instead.
Status CheckPollable(int fd, const char* what) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return Error::FromErrno(std::string(what) + ": fstat", errno);
  if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || isatty(fd)) return Ok();
  return Error(std::string(what) + " must be a pipe, socket or terminal");
}

// Reading the umask means setting it; this runs on the loop thread before
// any worker thread or child exists.
mode_t CurrentUmask() {
  mode_t mask = umask(022);
  umask(mask);
  return mask;
}

proto::Exit ExitFromStatus(uint32_t channel, int wait_status) {
  proto::Exit e;
  e.channel = channel;
  if (WIFSIGNALED(wait_status)) {
    e.signal = SignalName(WTERMSIG(wait_status));
    e.core_dumped = WCOREDUMP(wait_status);
  } else {
    e.code = WEXITSTATUS(wait_status);
  }
  return e;
}

}  // namespace

Session::Session(uv_loop_t* loop, SessionOptions options)
    : loop_(loop),
      options_(std::move(options)),
      mux_(this, proto::MakeHello(options_.program_version, {"exec", "pty", "path", "fs"},
                                   proto::kPreferredWindow)),
      reaper_(loop, [this](pid_t pid, int status) { OnChildExit(pid, status); }),
      killer_(loop, options_.kill_grace),
      fs_(
          loop, CurrentUmask(), [this](proto::FsReply&& r) { SendFsReply(std::move(r)); },
          [this] { return mux_.ControlBacklog() < kFsReplyBacklog; }),
      in_buf_(new char[kInputBufferSize]) {}

Session::~Session() = default;

Status Session::Start() {
  Status s = CheckPollable(options_.in_fd, "stdin");
  if (s) s = CheckPollable(options_.out_fd, "stdout");
  if (s) {
    uv_pipe_init(loop_, &in_, 0);
    uv_pipe_init(loop_, &out_, 0);
    in_.data = this;
    out_.data = this;
    write_req_.data = this;
    stdio_open_ = true;
    // A larger pipe to sshd (when stdout is one) takes a whole output batch
    // per write: fewer wake-ups of this loop and of sshd while streaming.
    // Best effort: the kernel may refuse (pipe-max-size, per-user limits).
    (void)fcntl(options_.out_fd, F_SETPIPE_SZ, kStdoutPipeSize);
    int rc = uv_pipe_open(&in_, options_.in_fd);
    if (rc == 0) rc = uv_pipe_open(&out_, options_.out_fd);
    if (rc == 0) {
      rc = uv_read_start(reinterpret_cast<uv_stream_t*>(&in_), AllocCallback, ReadCallback);
    }
    if (rc < 0) s = Error(std::string("opening stdin/stdout: ") + uv_strerror(rc));
  }
  if (s) s = reaper_.Start();
  if (!s) {
    EndSession(kExitIoError, s.error().message());
    return s;
  }
  Flush();  // our Hello
  return Ok();
}

// --- protocol stream -------------------------------------------------------

void Session::AllocCallback(uv_handle_t* handle, size_t /*suggested*/, uv_buf_t* buf) noexcept {
  auto* self = static_cast<Session*>(handle->data);
  *buf = uv_buf_init(self->in_buf_.get(), kInputBufferSize);
}

void Session::ReadCallback(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
  static_cast<Session*>(stream->data)->OnInput(nread, buf);
}

void Session::OnInput(ssize_t nread, const uv_buf_t* buf) {
  if (state_ != State::kRunning) return;
  if (nread == UV_EOF) {
    EndSession(kExitOk, "");
    return;
  }
  if (nread < 0) {
    EndSession(kExitIoError, std::string("reading stdin: ") + uv_strerror(static_cast<int>(nread)));
    return;
  }
  // No flushing from inside Feed: the mux is mid-parse. Callbacks below
  // queue output; it leaves right after.
  flushing_ = true;
  auto s = mux_.Feed(std::string_view(buf->base, static_cast<size_t>(nread)));
  flushing_ = false;
  if (!s) {
    EndSession(kExitProtocol, "protocol error: " + s.error().message());
    return;
  }
  Flush();
}

void Session::Flush() {
  if (flushing_ || write_in_flight_ || !stdio_open_ || state_ == State::kDone) return;
  if (!mux_.HasOutput()) return;
  flushing_ = true;
  out_buf_.clear();
  mux_.TakeOutput(&out_buf_, kOutputBatch);  // may call OnWritable
  flushing_ = false;
  if (out_buf_.empty()) return;
  uv_buf_t b = uv_buf_init(out_buf_.data(), static_cast<unsigned>(out_buf_.size()));
  int rc = uv_write(&write_req_, reinterpret_cast<uv_stream_t*>(&out_), &b, 1, WriteCallback);
  if (rc < 0) {
    EndSession(kExitIoError, std::string("writing stdout: ") + uv_strerror(rc));
    return;
  }
  write_in_flight_ = true;
}

void Session::WriteCallback(uv_write_t* req, int status) noexcept {
  auto* self = static_cast<Session*>(req->data);
  self->write_in_flight_ = false;
  if (status == UV_ECANCELED) return;  // closing
  if (status < 0) {
    self->EndSession(kExitIoError, std::string("writing stdout: ") + uv_strerror(status));
    return;
  }
  self->fs_.Deliver();  // replies that waited for the output to drain
  self->Flush();
}

void Session::SendFsReply(proto::FsReply&& reply) {
  if (state_ != State::kRunning) return;
  // Moved into the Message: a READ reply carries up to 512 KiB of data.
  proto::Message m(std::move(reply));
  if (auto s = mux_.Send(m); !s) {
    // Cannot happen within the limits; answer anyway so nobody waits.
    const auto& r = std::get<proto::FsReply>(m);
    Logf(LogLevel::kError, "cannot send FsReply %llu: %s", static_cast<unsigned long long>(r.id),
         s.error().message().c_str());
    Send(proto::MakeFsError(r.id, EIO));
  }
  Flush();
}

void Session::Send(const proto::Message& m) {
  if (auto s = mux_.Send(m); !s) {
    Logf(LogLevel::kError, "cannot send %s: %s", proto::MessageName(m).c_str(),
         s.error().message().c_str());
  }
}

// --- messages --------------------------------------------------------------

void Session::OnHello(const proto::Hello& peer, uint32_t version) {
  Logf(LogLevel::kInfo, "peer %s %s/%s, protocol %u", peer.program_version.c_str(), peer.os.c_str(),
       peer.arch.c_str(), version);
}

void Session::OnMessage(proto::Message&& m) {
  if (state_ != State::kRunning) return;
  std::visit(
      [this](auto&& msg) {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, proto::Exec>) {
          HandleExec(std::move(msg));
        } else if constexpr (std::is_same_v<T, proto::Signal>) {
          HandleSignal(msg);
        } else if constexpr (std::is_same_v<T, proto::Resize>) {
          HandleResize(msg);
        } else if constexpr (std::is_same_v<T, proto::Close>) {
          HandleClose(msg);
        } else if constexpr (std::is_same_v<T, proto::PathQuery>) {
          HandlePathQuery(msg);
        } else if constexpr (std::is_same_v<T, proto::Ping>) {
          Send(proto::Pong{msg.id});
        } else if constexpr (std::is_same_v<T, proto::FsRequest>) {
          fs_.Handle(std::move(msg));
        } else if constexpr (std::is_same_v<T, proto::ErrorMsg>) {
          Logf(LogLevel::kWarn, "peer reports error %u: %s", msg.code, msg.text.c_str());
        } else if constexpr (std::is_same_v<T, proto::Log>) {
          Logf(LogLevel::kDebug, "peer log (%s): %s", msg.level.c_str(), msg.text.c_str());
        } else {
          Logf(LogLevel::kDebug, "ignoring %s from peer", proto::MessageName(msg).c_str());
        }
      },
      std::move(m));
}

void Session::SendChannelError(uint32_t channel, const std::string& text) {
  proto::ErrorMsg e;
  e.code = proto::ErrorMsg::kChannel;
  e.text = text;
  e.channel = channel;
  Send(e);
}

Session::Channel* Session::FindChannel(uint32_t id) {
  auto it = channels_.find(id);
  return it == channels_.end() ? nullptr : &it->second;
}

void Session::HandleExec(proto::Exec&& exec) {
  uint32_t id = exec.channel;
  if (channels_.count(id) != 0) {
    // The mux refuses an Exec on an open channel, so this is a reuse after
    // our side finished but before the peer's Close: still a peer error.
    SendChannelError(id, "channel " + std::to_string(id) + " is still in use");
    return;
  }
  SpawnFailure failure;
  auto child = SpawnChild(exec, options_.fallback_path, &failure);
  if (!child) {
    // Could not start: code 127 (not found, no cwd) or 126 (not runnable),
    // plus the reason; no Started is sent.
    Logf(LogLevel::kInfo, "channel %u: %s", id, failure.error.c_str());
    proto::Exit e;
    e.channel = id;
    e.code = failure.code;
    e.error = failure.error;
    if (auto s = mux_.SendAfterData(id, e); !s)
      Logf(LogLevel::kError, "Exit: %s", s.error().message().c_str());
    return;
  }
  Logf(LogLevel::kDebug, "channel %u: started %s as pid %d", id,
       exec.argv.empty() ? "" : exec.argv[0].c_str(), static_cast<int>(child->pid));
  Channel& c = channels_[id];
  c.id = id;
  c.pid = child->pid;
  c.group = child->group;
  channel_of_pid_[c.pid] = id;
  killer_.Track(c.group);
  if (c.group != c.pid) killer_.Track(c.pid);  // the job leader's own group
  if (child->job_events) {
    c.job = std::make_unique<JobWatch>(loop_, std::move(child->job_events),
                                       [this, id](const JobEvent& e) { OnJobEvent(id, e); });
    if (auto s = c.job->Start(); !s) {
      Logf(LogLevel::kWarn, "channel %u: job events: %s", id, s.error().message().c_str());
    }
  }
  if (!exec.no_started) Send(proto::Started{id, child->group});

  std::vector<FdPump*> to_start;
  for (ChildPipe& p : child->pipes) {
    bool out = p.direction == proto::FdSpec::kFromChild;
    auto* pump = new FdPump(loop_, &mux_, this, id, std::move(p.parent_end),
                            out ? std::vector<uint32_t>{p.fd} : std::vector<uint32_t>{},
                            out ? std::vector<uint32_t>{} : std::vector<uint32_t>{p.fd}, false);
    c.pumps.emplace_back(pump);
    (out ? c.readers : c.writers)[p.fd] = pump;
    to_start.push_back(pump);
  }
  if (child->pty_master) {
    auto* pump = new FdPump(loop_, &mux_, this, id, std::move(child->pty_master), child->tty_out,
                            child->tty_in, true);
    c.pumps.emplace_back(pump);
    if (!child->tty_out.empty()) c.readers[child->tty_out[0]] = pump;
    // Keystrokes may arrive on any stream the pty serves: on fd 0 when it is
    // the terminal, else on an output fd (`x | less` reads /dev/tty).
    for (uint32_t fd : child->tty_in) c.writers[fd] = pump;
    for (uint32_t fd : child->tty_out) c.writers[fd] = pump;
    c.pty = pump;
    to_start.push_back(pump);
  }
  for (FdPump* pump : to_start) {
    if (auto s = pump->Start(); !s) {
      // Without its pump the stream would never end: report Eof at once.
      Logf(LogLevel::kError, "channel %u: %s", id, s.error().message().c_str());
      for (uint32_t fd : pump->out_fds()) mux_.WriteEof(id, fd);
      OnPumpFinished(pump);
    }
  }
  MaybeFinishChannel(id);
  Flush();
}

void Session::HandleSignal(const proto::Signal& s) {
  auto signo = SignalFromName(s.name);
  if (!signo) {
    SendChannelError(s.channel, "unknown signal name '" + s.name.substr(0, 32) + "'");
    return;
  }
  Channel* c = FindChannel(s.channel);
  if (c == nullptr) {
    // After Exit and before the peer's Close a signal is a harmless race.
    if (!mux_.HasChannel(s.channel)) {
      SendChannelError(s.channel, "no channel " + std::to_string(s.channel));
    }
    return;
  }
  Logf(LogLevel::kDebug, "channel %u: SIG%s to group %d", s.channel, s.name.c_str(),
       static_cast<int>(c->group));
  if (kill(-c->group, *signo) != 0 && errno != ESRCH) {
    SendChannelError(s.channel, "kill SIG" + s.name + ": " + std::strerror(errno));
  }
}

void Session::HandleResize(const proto::Resize& r) {
  Channel* c = FindChannel(r.channel);
  if (c == nullptr || c->pty == nullptr) return;  // no terminal (any more)
  if (auto s = SetWindowSize(c->pty->fd(), r.rows, r.cols); !s) {
    Logf(LogLevel::kWarn, "channel %u: %s", r.channel, s.error().message().c_str());
  }
}

void Session::HandleClose(const proto::Close& close) {
  Channel* c = FindChannel(close.channel);
  if (c == nullptr) return;  // finished already
  Logf(LogLevel::kDebug, "channel %u: closed by peer", close.channel);
  if (!c->exited) {
    killer_.Kill(c->group);
    if (c->group != c->pid) killer_.Kill(c->pid);
  }
  channel_of_pid_.erase(c->pid);
  channels_.erase(close.channel);  // closes the pumps
}

void Session::HandlePathQuery(const proto::PathQuery& q) {
  proto::PathInfo info;
  info.id = q.id;
  if (const char* home = getenv("HOME"); home != nullptr) info.home = home;
  info.uid = static_cast<uint32_t>(getuid());
  info.gid = static_cast<uint32_t>(getgid());
  info.entries = ListExecutables(q.dirs.empty() ? SplitPath(options_.fallback_path) : q.dirs);
  if (auto s = mux_.Send(info); !s) {
    size_t n = info.entries.size();
    info.entries.clear();
    info.error = "PathInfo with " + std::to_string(n) + " entries: " + s.error().message();
    Send(info);
  }
  Flush();
}

// --- child streams ---------------------------------------------------------

void Session::OnData(uint32_t channel, uint32_t fd, std::string_view bytes) {
  Channel* c = FindChannel(channel);
  auto it = c == nullptr ? std::map<uint32_t, FdPump*>::iterator() : c->writers.find(fd);
  if (c == nullptr || it == c->writers.end()) {
    mux_.Consume(channel, fd, bytes.size());  // nobody to write it to: drop
    return;
  }
  it->second->Deliver(fd, bytes);
}

void Session::OnEof(uint32_t channel, uint32_t fd) {
  Channel* c = FindChannel(channel);
  if (c == nullptr) return;
  auto it = c->writers.find(fd);
  if (it != c->writers.end()) it->second->DeliverEof(fd);
}

void Session::OnWritable(uint32_t channel, uint32_t fd) {
  Channel* c = FindChannel(channel);
  if (c == nullptr) return;
  auto it = c->readers.find(fd);
  if (it != c->readers.end()) it->second->OnMuxWritable();
}

void Session::OnPumpOutput() { Flush(); }

void Session::OnPumpFinished(FdPump* pump) {
  uint32_t id = pump->channel();
  Channel* c = FindChannel(id);
  if (c == nullptr) return;
  std::erase_if(c->writers, [pump](const auto& kv) { return kv.second == pump; });
  std::erase_if(c->readers, [pump](const auto& kv) { return kv.second == pump; });
  // A pty master stays open until the child is reaped: closing it hangs up
  // the terminal, and a child that closed its fds but has not exited yet
  // would die of SIGHUP instead of reporting its own status.
  if (c->pty != pump) {
    std::erase_if(c->pumps, [pump](const PumpPtr& p) { return p.get() == pump; });  // Close()
  }
  MaybeFinishChannel(id);
}

// --- exits -----------------------------------------------------------------

void Session::OnChildExit(pid_t pid, int wait_status) {
  killer_.Prune();
  auto it = channel_of_pid_.find(pid);
  if (it == channel_of_pid_.end()) {
    Logf(LogLevel::kTrace, "reaped pid %d (no channel)", static_cast<int>(pid));
    return;
  }
  uint32_t id = it->second;
  channel_of_pid_.erase(it);
  Channel* c = FindChannel(id);
  if (c == nullptr) return;
  c->exited = true;
  if (c->job) c->job->Drain();  // the leader's last word: the command's status
  // Without it (the leader was killed) the leader's own status stands in.
  c->wait_status = c->job_status.value_or(wait_status);
  MaybeFinishChannel(id);
}

void Session::OnJobEvent(uint32_t id, const JobEvent& e) {
  Channel* c = FindChannel(id);
  if (c == nullptr) return;
  if (e.kind == JobEvent::kStatus) {
    c->job_status = e.value;
  } else if (e.kind == JobEvent::kStopped) {
    std::string name = SignalName(e.value);
    Logf(LogLevel::kDebug, "channel %u: stopped by SIG%s", id, name.c_str());
    if (auto s = mux_.SendAfterData(id, proto::Stopped{id, name}); !s) {
      Logf(LogLevel::kError, "Stopped: %s", s.error().message().c_str());
    }
    Flush();
  }
}

// Exit waits for every output stream to reach end of file, as ssh does: a
// background process that keeps the child's stdout open keeps the command
// running from the peer's point of view. It belongs to the same process group,
// so Close or the end of the session ends it.
void Session::MaybeFinishChannel(uint32_t id) {
  Channel* c = FindChannel(id);
  if (c == nullptr || !c->exited) return;
  for (const PumpPtr& p : c->pumps) {
    if (p->reads() && !p->read_done()) return;
  }
  proto::Exit e = ExitFromStatus(id, c->wait_status);
  Logf(LogLevel::kDebug, "channel %u: exit %s", id,
       e.code ? std::to_string(*e.code).c_str() : e.signal->c_str());
  if (auto s = mux_.SendAfterData(id, e); !s)
    Logf(LogLevel::kError, "Exit: %s", s.error().message().c_str());
  channels_.erase(id);  // closes remaining input pumps; later input is dropped
  Flush();
}

// --- session end -------------------------------------------------------------

void Session::EndSession(int code, const std::string& reason) {
  if (state_ != State::kRunning) return;
  state_ = State::kEnding;
  exit_code_ = code;
  if (code != kExitOk) {
    // Always said, whatever the log level: the peer may not get our Error.
    std::string line = "mproxy-agent: " + reason + "\n";
    (void)!write(STDERR_FILENO, line.data(), line.size());
  } else {
    Logf(LogLevel::kInfo, "session ended by peer");
  }
  if (stdio_open_) uv_read_stop(reinterpret_cast<uv_stream_t*>(&in_));
  fs_.Shutdown();
  channels_.clear();  // closes every pump
  channel_of_pid_.clear();
  Flush();
  killer_.KillAll();
  killer_.WhenAllGone([this] { Finish(); });
}

void Session::Finish() {
  if (state_ == State::kDone) return;
  // Best effort: the Error telling the peer why, if it still listens.
  if (stdio_open_ && !write_in_flight_ && mux_.HasOutput()) {
    out_buf_.clear();
    mux_.TakeOutput(&out_buf_, kOutputBatch);
    uv_buf_t b = uv_buf_init(out_buf_.data(), static_cast<unsigned>(out_buf_.size()));
    (void)uv_try_write(reinterpret_cast<uv_stream_t*>(&out_), &b, 1);
  }
  state_ = State::kDone;
  if (stdio_open_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&in_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&out_), nullptr);
  }
  reaper_.ReapAll();
  reaper_.Close();
  killer_.Close();
}

}  // namespace mproxy::agent
