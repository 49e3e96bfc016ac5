// In-memory transport pair for multiplexer tests.
#include "tests/fakes/mux_pair.h"

#include <algorithm>

#include "proto/hello.h"

namespace mproxy::testing {

Endpoint::Endpoint(const std::string& program_version)
    : mux_(std::make_unique<proto::Mux>(this, proto::MakeHello(program_version, {"test"}))) {}

void Endpoint::OnHello(const proto::Hello& peer, uint32_t v) {
  peer_hello = peer;
  version = v;
}

void Endpoint::OnMessage(proto::Message&& m) { messages.push_back(std::move(m)); }

void Endpoint::OnData(uint32_t channel, uint32_t fd, std::string_view bytes) {
  StreamId s{channel, fd};
  received[s].append(bytes);
  if (paused_.count(s) != 0) {
    unconsumed[s] += bytes.size();
    max_unconsumed[s] = std::max(max_unconsumed[s], unconsumed[s]);
  } else {
    mux_->Consume(channel, fd, bytes.size());
  }
}

void Endpoint::OnEof(uint32_t channel, uint32_t fd) { eofs.insert({channel, fd}); }

void Endpoint::OnWritable(uint32_t channel, uint32_t fd) {
  ++writable_events;
  Flush({channel, fd});
}

void Endpoint::QueueSend(uint32_t channel, uint32_t fd, std::string bytes, bool eof) {
  Pending& p = to_send_[{channel, fd}];
  p.bytes.append(bytes);
  p.eof = p.eof || eof;
  Flush({channel, fd});
}

void Endpoint::Flush(StreamId s) {
  auto it = to_send_.find(s);
  if (it == to_send_.end()) return;
  Pending& p = it->second;
  while (p.off < p.bytes.size()) {
    size_t n = mux_->Write(s.first, s.second, std::string_view(p.bytes).substr(p.off));
    if (n == 0) return;  // OnWritable will call again
    p.off += n;
  }
  if (p.eof) mux_->WriteEof(s.first, s.second);
  to_send_.erase(it);
}

void Endpoint::Pause(StreamId s) { paused_.insert(s); }

void Endpoint::Resume(StreamId s) {
  paused_.erase(s);
  size_t n = std::exchange(unconsumed[s], 0);
  if (n > 0) mux_->Consume(s.first, s.second, n);
}

Result<size_t> MuxPair::Step(size_t chunk, size_t batch) {
  size_t moved = 0;
  for (auto [from, to] : {std::pair{&a, &b}, std::pair{&b, &a}}) {
    if (!from->mux().HasOutput()) continue;
    std::string out;
    from->mux().TakeOutput(&out, batch);
    moved += out.size();
    size_t step = chunk == 0 ? out.size() : chunk;
    for (size_t off = 0; off < out.size(); off += step) {
      auto s = to->mux().Feed(std::string_view(out).substr(off, step));
      if (!s) return s.error();
    }
  }
  return moved;
}

Status MuxPair::Pump(size_t chunk, size_t batch, size_t max_rounds) {
  for (size_t i = 0; i < max_rounds; ++i) {
    if (!a.mux().HasOutput() && !b.mux().HasOutput()) return Ok();
    auto r = Step(chunk, batch);
    if (!r) return r.error();
  }
  return Error("Pump: no quiescence after max_rounds");
}

}  // namespace mproxy::testing
