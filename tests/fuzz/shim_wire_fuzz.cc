// libFuzzer target: the shim socket's frames. The whole input is tried as
// one frame body (DecodeBody); then, after a first byte that picks the chunk
// size, the rest is fed to a Decoder as a stream. Every message that decodes
// must encode back to the bytes it came from.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "proto/shim_wire.h"

namespace {

using namespace mproxy::proto::shim;

void CheckRoundTrip(const Message& m, std::string_view body) {
  // Decoding is strict, so a message has exactly one encoding.
  std::string again = Encode(m);
  if (std::string_view(again).substr(4) != body) std::abort();
  auto back = DecodeBody(body);
  if (!back.ok() || !(*back == m)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto m = DecodeBody(in); m.ok()) {
    // A Request of another version is read no further than its version.
    const auto* req = std::get_if<Request>(&*m);
    if (req == nullptr || req->version == kVersion) CheckRoundTrip(*m, in);
  }
  if (size == 0) return 0;
  size_t chunk = (data[0] % 64) + 1;
  std::string_view stream = in.substr(1);
  Decoder d;
  for (size_t off = 0; off < stream.size(); off += chunk) {
    d.Feed(stream.substr(off, chunk));
    for (;;) {
      auto m = d.Next();
      if (!m.ok()) return 0;
      if (!m->has_value()) break;
    }
    if (d.buffered() > kMaxFrame + 4 + chunk) std::abort();
  }
  return 0;
}
