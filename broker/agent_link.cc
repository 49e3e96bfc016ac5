// AgentLink: transport thread -> uv_async -> Mux -> channel handlers, and
// Mux output -> ByteStream::Send.
#include "broker/agent_link.h"

#include <cerrno>

#include "broker/logging.h"
#include "proto/codec.h"
#include "proto/fs.h"
#include "proto/hello.h"

namespace mproxy::broker {

namespace {
constexpr size_t kOutputBatch = 256 * 1024;
constexpr size_t kKeepDrainCapacity = 4 * 1024 * 1024;
const char* const kCapabilities[] = {"exec", "path"};
}  // namespace

AgentLink::AgentLink(uv_loop_t* loop, std::unique_ptr<ByteStream> stream, std::string peer_name)
    : loop_(loop),
      stream_(std::move(stream)),
      peer_name_(std::move(peer_name)),
      log_(Log("link")),
      mux_(this, proto::MakeHello(MPROXY_VERSION,
                                  std::vector<std::string>(std::begin(kCapabilities),
                                                           std::end(kCapabilities)),
                                  proto::kPreferredWindow)) {
  if (Status s = wake_.Start(loop_, [this] { Drain(); }); !s.ok()) {
    log_->error("{}: {}", peer_name_, s.error().message());
  }
  idle_ = new uv_idle_t;
  uv_idle_init(loop_, idle_);
  idle_->data = this;
}

AgentLink::~AgentLink() {
  Shutdown(Error("session closed"));
  wake_.Close();
  idle_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(idle_),
           [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_idle_t*>(h); });
}

void AgentLink::ScheduleFlush() {
  // Deferred to the next loop turn: Flush may call OnWritable, and a handler
  // that is in the middle of Write must not be re-entered.
  if (!down_ && !uv_is_active(reinterpret_cast<uv_handle_t*>(idle_))) {
    uv_idle_start(idle_, &AgentLink::OnIdle);
  }
}

void AgentLink::OnIdle(uv_idle_t* handle) noexcept {
  uv_idle_stop(handle);
  auto* self = static_cast<AgentLink*>(handle->data);
  if (self != nullptr) self->Flush();
}

void AgentLink::Start(std::function<void(const proto::Hello&)> on_ready,
                      std::function<void(const Status&)> on_lost) {
  on_ready_ = std::move(on_ready);
  on_lost_ = std::move(on_lost);
  // Callbacks only queue and wake the loop: they run on the transport's
  // thread and must never call back into the stream.
  ByteStream::Callbacks cb;
  // A stream that reports the end of each read burst gets one loop wake-up
  // per burst, not one per chunk (each wake-up is a syscall and a context
  // switch, a large share of the cost of a bulk transfer).
  const bool batched = stream_->batches_data();
  cb.on_data = [this, batched](std::string_view bytes) {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    inbox_.append(bytes);
    if (!batched) wake_.Wake();
  };
  cb.on_batch_end = [this] { wake_.Wake(); };
  cb.on_stderr = [this](std::string_view bytes) {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    stderr_inbox_.append(bytes);
    wake_.Wake();
  };
  cb.on_closed = [this](const Status& why) {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    inbox_closed_ = true;
    inbox_status_ = why;
    wake_.Wake();
  };
  stream_->Start(std::move(cb));
  Flush();  // our Hello
}

void AgentLink::Drain() {
  // drain_ and inbox_ trade buffers, so both keep their capacity: appending
  // to an inbox emptied by a swap with a fresh string would reallocate (and
  // copy everything again) as it grows, on every wake-up.
  std::string& bytes = drain_;
  bytes.clear();
  std::string err;
  bool closed;
  Status why;
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    bytes.swap(inbox_);
    err.swap(stderr_inbox_);
    closed = inbox_closed_;
    why = inbox_status_;
  }
  if (!err.empty()) {
    // The agent's diagnostics, one log line per line.
    stderr_line_ += err;
    size_t nl;
    while ((nl = stderr_line_.find('\n')) != std::string::npos) {
      Log("agent")->info("{}: {}", peer_name_, stderr_line_.substr(0, nl));
      stderr_line_.erase(0, nl + 1);
    }
  }
  if (down_) return;
  if (!bytes.empty()) {
    log_->trace("{}: {} bytes from agent", peer_name_, bytes.size());
    if (auto s = mux_.Feed(bytes); !s) {
      Flush();  // the Error telling the agent why
      Fail(Error("protocol error from agent on " + peer_name_ + ": " + s.error().message()));
      return;
    }
    Flush();
  }
  // A burst may have grown the buffers a lot: do not keep that for ever.
  if (bytes.capacity() > kKeepDrainCapacity) bytes = std::string();
  if (closed) {
    std::string text = why.ok() ? "connection closed" : why.error().message();
    if (!stderr_line_.empty()) text += " (agent said: " + stderr_line_ + ")";
    Fail(Error("lost connection to " + peer_name_ + ": " + text));
  }
}

void AgentLink::Flush() {
  if (down_) return;
  while (mux_.HasOutput()) {
    out_.clear();
    mux_.TakeOutput(&out_, kOutputBatch);
    if (out_.empty()) break;
    stream_->Send(std::move(out_));
    out_ = std::string();
  }
}

void AgentLink::Fail(const Status& why) {
  if (down_) return;
  Shutdown(why);
  if (on_lost_) on_lost_(why);
}

void AgentLink::Shutdown(const Status& why) {
  if (down_) return;
  down_ = true;
  stream_->Close();
  auto channels = std::move(channels_);
  channels_.clear();
  for (auto& [id, h] : channels) h->OnLost(why);
  auto queries = std::move(path_queries_);
  path_queries_.clear();
  for (auto& [id, done] : queries) done(why.ok() ? Error("session closed") : why.error());
  auto fs = std::move(fs_requests_);
  fs_requests_.clear();
  for (auto& [id, done] : fs) done(proto::MakeFsError(id, EIO));
}

void AgentLink::OnHello(const proto::Hello& peer, uint32_t version) {
  log_->debug("{}: agent {} ({} {}), protocol {}", peer_name_, peer.program_version,
                     peer.os, peer.arch, version);
  ready_ = true;
  if (on_ready_) on_ready_(peer);
}

void AgentLink::OnMessage(proto::Message&& m) {
  if (log_->should_log(spdlog::level::trace)) {
    log_->trace("{}: received {}", peer_name_, proto::MessageName(m));
  }
  if (auto* exit = std::get_if<proto::Exit>(&m)) {
    auto it = channels_.find(exit->channel);
    if (it == channels_.end()) return;
    ChannelHandler* h = it->second;
    channels_.erase(it);
    (void)mux_.Send(proto::Close{exit->channel});
    ScheduleFlush();
    h->OnExit(*exit);
  } else if (auto* started = std::get_if<proto::Started>(&m)) {
    auto it = channels_.find(started->channel);
    if (it != channels_.end()) it->second->OnStarted(*started);
  } else if (auto* stopped = std::get_if<proto::Stopped>(&m)) {
    auto it = channels_.find(stopped->channel);
    if (it != channels_.end()) it->second->OnStopped(*stopped);
  } else if (auto* info = std::get_if<proto::PathInfo>(&m)) {
    auto it = path_queries_.find(info->id);
    if (it == path_queries_.end()) return;
    auto done = std::move(it->second);
    path_queries_.erase(it);
    done(std::move(*info));
  } else if (auto* reply = std::get_if<proto::FsReply>(&m)) {
    auto it = fs_requests_.find(reply->id);
    if (it == fs_requests_.end()) {
      log_->debug("{}: FsReply for unknown request {}", peer_name_, reply->id);
      return;
    }
    auto done = std::move(it->second);
    fs_requests_.erase(it);
    done(std::move(*reply));
  } else if (auto* err = std::get_if<proto::ErrorMsg>(&m)) {
    if (err->channel) {
      auto it = channels_.find(*err->channel);
      if (it != channels_.end()) {
        it->second->OnChannelError(*err);
        return;
      }
    }
    log_->warn("{}: agent reported: {}", peer_name_, err->text);
  } else if (auto* log = std::get_if<proto::Log>(&m)) {
    Log("agent")->log(spdlog::level::from_str(log->level), "{}: {}", peer_name_, log->text);
  } else if (auto* ping = std::get_if<proto::Ping>(&m)) {
    (void)mux_.Send(proto::Pong{ping->id});
    ScheduleFlush();
  }
}

void AgentLink::OnData(uint32_t channel, uint32_t fd, std::string_view bytes) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) {
    mux_.Consume(channel, fd, bytes.size());
    return;
  }
  it->second->OnData(fd, bytes);
}

void AgentLink::OnEof(uint32_t channel, uint32_t fd) {
  auto it = channels_.find(channel);
  if (it != channels_.end()) it->second->OnEof(fd);
}

void AgentLink::OnWritable(uint32_t channel, uint32_t fd) {
  auto it = channels_.find(channel);
  if (it != channels_.end()) it->second->OnWritable(fd);
}

Result<uint32_t> AgentLink::OpenExec(proto::Exec exec, ChannelHandler* handler) {
  if (down_) return Error("not connected to " + peer_name_);
  if (before_exec_) before_exec_();
  uint32_t id = next_channel_;
  while (mux_.HasChannel(id) || channels_.count(id) != 0 || id == 0) ++id;
  next_channel_ = id + 1;
  exec.channel = id;
  if (auto s = mux_.Send(exec); !s) return s.error();
  channels_[id] = handler;
  ScheduleFlush();
  return id;
}

size_t AgentLink::Write(uint32_t channel, uint32_t fd, std::string_view bytes) {
  if (down_) return 0;
  size_t n = mux_.Write(channel, fd, bytes);
  ScheduleFlush();
  return n;
}

void AgentLink::WriteEof(uint32_t channel, uint32_t fd) {
  if (down_) return;
  mux_.WriteEof(channel, fd);
  ScheduleFlush();
}

void AgentLink::Consume(uint32_t channel, uint32_t fd, size_t n) {
  if (down_) return;
  mux_.Consume(channel, fd, n);
  ScheduleFlush();
}

void AgentLink::SendSignal(uint32_t channel, const std::string& name) {
  if (down_) return;
  (void)mux_.Send(proto::Signal{channel, name});
  ScheduleFlush();
}

void AgentLink::SendResize(uint32_t channel, uint32_t rows, uint32_t cols) {
  if (down_) return;
  (void)mux_.Send(proto::Resize{channel, rows, cols});
  ScheduleFlush();
}

void AgentLink::CloseChannel(uint32_t channel) {
  channels_.erase(channel);
  if (down_ || !mux_.HasChannel(channel)) return;
  (void)mux_.Send(proto::Close{channel});
  ScheduleFlush();
}

void AgentLink::QueryPath(std::vector<std::string> dirs,
                          std::function<void(Result<proto::PathInfo>)> done) {
  if (down_) {
    done(Error("not connected to " + peer_name_));
    return;
  }
  uint64_t id = next_query_++;
  path_queries_[id] = std::move(done);
  (void)mux_.Send(proto::PathQuery{id, std::move(dirs)});
  ScheduleFlush();
}

void AgentLink::SendFs(proto::FsRequest request, std::function<void(proto::FsReply)> done) {
  uint64_t id = next_fs_id_++;
  if (down_) return done(proto::MakeFsError(id, EIO));
  request.id = id;
  if (auto s = mux_.Send(request); !s) {
    log_->warn("{}: sending a file operation: {}", peer_name_, s.error().message());
    return done(proto::MakeFsError(id, EIO));
  }
  fs_requests_[id] = std::move(done);
  // A burst of write-behind (up to 8 MiB) must not wait here for the next
  // loop turn: past kMaxControlBacklog the mux takes the agent for one that
  // stopped reading. Flush calls no handler, so it is safe from here.
  if (mux_.ControlBacklog() >= kFsFlushBacklog) return Flush();
  ScheduleFlush();
}

}  // namespace mproxy::broker
