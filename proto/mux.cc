// Mux: framing, Hello, credit accounting and data scheduling.
#include "proto/mux.h"

#include <algorithm>

#include "proto/codec.h"
#include "proto/hello.h"

namespace mproxy::proto {

namespace {

// The credit a Hello's `window` grants per stream.
uint64_t GrantedWindow(uint32_t window) {
  return std::clamp<uint64_t>(window, kInitialWindow, kMaxInitialWindow);
}

}  // namespace

Mux::Mux(MuxDelegate* delegate, Hello mine)
    : delegate_(delegate), mine_(std::move(mine)), local_window_(GrantedWindow(mine_.window)) {
  // Our own Hello always fits in a frame; an oversized one is a programming error.
  auto s = EncodeFrame(mine_, &control_);
  (void)s;
}

Status Mux::Fail(uint32_t code, const std::string& text) {
  ErrorMsg e;
  e.code = code;
  e.text = text;
  (void)EncodeFrame(e, &control_);  // best effort: the peer learns why
  failed_ = Error(text);
  return failed_;
}

Status Mux::Feed(std::string_view bytes) {
  if (!failed_) return failed_;
  decoder_.Feed(bytes);
  for (;;) {
    auto frame = decoder_.Next();
    if (!frame) return Fail(ErrorMsg::kProtocol, frame.error().message());
    if (!frame->has_value()) return Ok();
    // Data, the bulk of the traffic, is delivered straight from the frame
    // buffer without copying its payload.
    if (hello_received_) {
      auto data = DecodeDataView(**frame);
      if (!data) return Fail(ErrorMsg::kProtocol, "bad frame from peer: " + data.error().message());
      if (data->has_value()) {
        const DataView& d = **data;
        if (auto s = OnDataFrame(d.channel, d.fd, d.bytes); !s) return s;
        if (!failed_) return failed_;
        continue;
      }
    }
    auto msg = DecodeMessage(**frame);
    if (!msg) return Fail(ErrorMsg::kProtocol, "bad frame from peer: " + msg.error().message());
    if (auto s = Dispatch(std::move(*msg)); !s) return s;
    if (!failed_) return failed_;
  }
}

Status Mux::Dispatch(Message&& m) {
  if (!hello_received_) {
    auto* hello = std::get_if<Hello>(&m);
    if (hello == nullptr) {
      return Fail(ErrorMsg::kProtocol, "expected Hello as the first frame, got " + MessageName(m));
    }
    auto v = NegotiateVersion(mine_, *hello);
    if (!v) return Fail(ErrorMsg::kVersion, v.error().message());
    version_ = *v;
    hello_received_ = true;
    // Streams opened before the peer's Hello started with the least credit.
    const uint64_t granted = GrantedWindow(hello->window);
    for (auto& [channel, c] : channels_) {
      for (auto& [fd, out] : c.out) {
        out.credit += granted - peer_window_;
        MaybeQueue(channel, fd, out);
      }
    }
    peer_window_ = granted;
    delegate_->OnHello(*hello, version_);
    return Ok();
  }
  switch (TypeOf(m)) {
    case MessageType::kHello:
      return Fail(ErrorMsg::kProtocol, "second Hello from peer");
    case MessageType::kData: {
      const auto& d = std::get<Data>(m);
      return OnDataFrame(d.channel, d.fd, d.bytes);
    }
    case MessageType::kEof: {
      const auto& e = std::get<Eof>(m);
      auto ch = channels_.find(e.channel);
      if (ch == channels_.end()) {
        ++dropped_frames_;
        return Ok();
      }
      InStream& in = InFor(ch->second, e.fd);
      if (in.eof) {
        return Fail(ErrorMsg::kProtocol, "second Eof on channel " + std::to_string(e.channel) +
                                             " fd " + std::to_string(e.fd));
      }
      in.eof = true;
      delegate_->OnEof(e.channel, e.fd);
      return Ok();
    }
    case MessageType::kWindow: {
      const auto& w = std::get<Window>(m);
      OutStream* s = FindOut(w.channel, w.fd);
      if (s == nullptr) {
        // A window for a stream we have not written yet opens it with credit.
        auto ch = channels_.find(w.channel);
        if (ch == channels_.end()) {
          ++dropped_frames_;
          return Ok();
        }
        s = &OutFor(ch->second, w.fd);
      }
      if (s->credit + w.credit < s->credit || s->credit + w.credit > (uint64_t{1} << 40)) {
        return Fail(ErrorMsg::kProtocol, "Window overflows the credit of channel " +
                                             std::to_string(w.channel) + " fd " + std::to_string(w.fd));
      }
      s->credit += w.credit;
      MaybeQueue(w.channel, w.fd, *s);
      return Ok();
    }
    case MessageType::kExec: {
      const auto& e = std::get<Exec>(m);
      if (channels_.count(e.channel) != 0) {
        ErrorMsg err;
        err.code = ErrorMsg::kChannel;
        err.text = "channel " + std::to_string(e.channel) + " is already open";
        err.channel = e.channel;
        return QueueControl(err);
      }
      channels_[e.channel];
      break;
    }
    case MessageType::kClose:
      channels_.erase(std::get<Close>(m).channel);
      break;
    default:
      break;
  }
  if (auto* u = std::get_if<UnknownMessage>(&m)) {
    ErrorMsg err;
    err.code = ErrorMsg::kUnknownMessage;
    err.text = "unknown message type " + std::to_string(u->type);
    return QueueControl(err);
  }
  delegate_->OnMessage(std::move(m));
  return Ok();
}

Status Mux::OnDataFrame(uint32_t channel, uint32_t fd, std::string_view bytes) {
  auto ch = channels_.find(channel);
  if (ch == channels_.end()) {
    ++dropped_frames_;
    return Ok();
  }
  InStream& in = InFor(ch->second, fd);
  if (in.eof) {
    return Fail(ErrorMsg::kProtocol, "Data after Eof on channel " + std::to_string(channel) +
                                         " fd " + std::to_string(fd));
  }
  if (bytes.size() > in.window) {
    return Fail(ErrorMsg::kProtocol,
                "peer exceeded its credit on channel " + std::to_string(channel) + " fd " +
                    std::to_string(fd) + " (" + std::to_string(bytes.size()) + " bytes, " +
                    std::to_string(in.window) + " allowed)");
  }
  in.window -= bytes.size();
  if (!bytes.empty()) delegate_->OnData(channel, fd, bytes);
  return Ok();
}

Status Mux::QueueControl(const Message& m) {
  if (control_.size() > kMaxControlBacklog) {
    return Fail(ErrorMsg::kProtocol, "peer is not reading: control backlog over " +
                                         std::to_string(kMaxControlBacklog) + " bytes");
  }
  return EncodeFrame(m, &control_);
}

Status Mux::Send(const Message& m) {
  switch (TypeOf(m)) {
    case MessageType::kData:
    case MessageType::kEof:
    case MessageType::kWindow:
      return Error("Mux::Send: " + MessageName(m) + " goes through Write/WriteEof/Consume");
    default:
      break;
  }
  if (auto s = QueueControl(m); !s) return s;
  if (const auto* e = std::get_if<Exec>(&m)) channels_[e->channel];
  if (const auto* c = std::get_if<Close>(&m)) channels_.erase(c->channel);
  return Ok();
}

Status Mux::SendAfterData(uint32_t channel, const Message& m) {
  auto ch = channels_.find(channel);
  if (ch == channels_.end() || ChannelDrained(ch->second)) return Send(m);
  std::string frame;
  if (auto s = EncodeFrame(m, &frame); !s) return s;
  ch->second.after_data.push_back(std::move(frame));
  return Ok();
}

void Mux::OpenChannel(uint32_t channel) { channels_[channel]; }

bool Mux::HasChannel(uint32_t channel) const { return channels_.count(channel) != 0; }

Mux::OutStream& Mux::OutFor(Channel& c, uint32_t fd) {
  auto [it, created] = c.out.try_emplace(fd);
  if (created) it->second.credit = peer_window_;
  return it->second;
}

Mux::InStream& Mux::InFor(Channel& c, uint32_t fd) {
  auto [it, created] = c.in.try_emplace(fd);
  if (created) it->second.window = local_window_;
  return it->second;
}

Mux::OutStream* Mux::FindOut(uint32_t channel, uint32_t fd) {
  auto ch = channels_.find(channel);
  if (ch == channels_.end()) return nullptr;
  auto s = ch->second.out.find(fd);
  return s == ch->second.out.end() ? nullptr : &s->second;
}

const Mux::OutStream* Mux::FindOut(uint32_t channel, uint32_t fd) const {
  return const_cast<Mux*>(this)->FindOut(channel, fd);
}

size_t Mux::WriteRoom(uint32_t channel, uint32_t fd) const {
  if (!HasChannel(channel)) return 0;
  const OutStream* s = FindOut(channel, fd);
  if (s == nullptr) return kSendBufferLimit;
  if (s->eof_pending) return 0;
  return kSendBufferLimit - std::min(kSendBufferLimit, s->pending());
}

size_t Mux::Write(uint32_t channel, uint32_t fd, std::string_view bytes) {
  auto ch = channels_.find(channel);
  if (ch == channels_.end()) return 0;
  OutStream& s = OutFor(ch->second, fd);
  if (s.eof_pending) return 0;
  size_t room = kSendBufferLimit - std::min(kSendBufferLimit, s.pending());
  size_t n = std::min(room, bytes.size());
  if (n < bytes.size()) s.want_writable = true;
  if (n == 0) return 0;
  if (s.head > 0 && s.head == s.buf.size()) {
    s.buf.clear();
    s.head = 0;
  }
  s.buf.append(bytes.substr(0, n));
  MaybeQueue(channel, fd, s);
  return n;
}

void Mux::WriteEof(uint32_t channel, uint32_t fd) {
  auto ch = channels_.find(channel);
  if (ch == channels_.end()) return;
  OutStream& s = OutFor(ch->second, fd);
  if (s.eof_pending) return;
  s.eof_pending = true;
  MaybeQueue(channel, fd, s);
}

void Mux::Consume(uint32_t channel, uint32_t fd, size_t n) {
  auto ch = channels_.find(channel);
  if (ch == channels_.end()) return;
  auto it = ch->second.in.find(fd);
  if (it == ch->second.in.end() || it->second.eof) return;
  InStream& in = it->second;
  in.unacked += n;
  // Return credit in batches: half a window keeps the pipe full without a
  // Window frame per Data frame.
  if (in.unacked >= local_window_ / 2) {
    Window w;
    w.channel = channel;
    w.fd = fd;
    w.credit = in.unacked;
    in.window += in.unacked;
    in.unacked = 0;
    (void)QueueControl(w);
  }
}

bool Mux::StreamReady(const OutStream& s) const {
  if (s.pending() > 0) return s.credit > 0;
  return s.eof_pending && !s.eof_sent;
}

void Mux::MaybeQueue(uint32_t channel, uint32_t fd, OutStream& s) {
  if (!s.queued && StreamReady(s)) {
    s.queued = true;
    ready_.push_back({channel, fd});
  }
}

bool Mux::ChannelDrained(const Channel& c) const {
  for (const auto& [fd, s] : c.out) {
    if (s.pending() > 0 || (s.eof_pending && !s.eof_sent)) return false;
  }
  return true;
}

void Mux::ReleaseAfterData(Channel& c, std::string* out) {
  if (c.after_data.empty() || !ChannelDrained(c)) return;
  for (auto& f : c.after_data) out->append(f);
  c.after_data.clear();
}

bool Mux::HasOutput() const { return !control_.empty() || !ready_.empty(); }

void Mux::TakeOutput(std::string* out, size_t max_bytes) {
  out->append(control_);
  control_.clear();
  size_t limit = out->size() + max_bytes;
  // Each pass sends at most one chunk per ready stream, so every stream gets
  // its turn however much another one has queued.
  while (!ready_.empty() && out->size() < limit) {
    StreamKey key = ready_.front();
    ready_.pop_front();
    auto ch = channels_.find(key.channel);
    if (ch == channels_.end()) continue;
    auto it = ch->second.out.find(key.fd);
    if (it == ch->second.out.end()) continue;
    OutStream& s = it->second;
    s.queued = false;
    if (s.pending() > 0 && s.credit > 0) {
      size_t chunk = std::min<uint64_t>({s.pending(), s.credit, kMaxDataChunk});
      (void)EncodeDataFrame(key.channel, key.fd, std::string_view(s.buf).substr(s.head, chunk), out);
      s.head += chunk;
      s.credit -= chunk;
      if (s.head == s.buf.size()) {
        s.buf.clear();
        s.head = 0;
      } else if (s.head > kSendBufferLimit) {
        s.buf.erase(0, s.head);
        s.head = 0;
      }
    }
    if (s.pending() == 0 && s.eof_pending && !s.eof_sent) {
      Eof e;
      e.channel = key.channel;
      e.fd = key.fd;
      (void)EncodeFrame(e, out);
      s.eof_sent = true;
    }
    MaybeQueue(key.channel, key.fd, s);
    ReleaseAfterData(ch->second, out);
    if (s.want_writable && s.pending() <= kSendBufferLimit / 2 && !s.eof_pending) {
      s.want_writable = false;
      delegate_->OnWritable(key.channel, key.fd);  // may Write or close channels
    }
  }
  // Control frames queued by callbacks above still go out in this batch.
  out->append(control_);
  control_.clear();
}

uint64_t Mux::SendCredit(uint32_t channel, uint32_t fd) const {
  const OutStream* s = FindOut(channel, fd);
  return s == nullptr ? (HasChannel(channel) ? peer_window_ : 0) : s->credit;
}

size_t Mux::Buffered(uint32_t channel, uint32_t fd) const {
  const OutStream* s = FindOut(channel, fd);
  return s == nullptr ? 0 : s->pending();
}

}  // namespace mproxy::proto
