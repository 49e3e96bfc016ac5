// libFuzzer target: a byte stream into the frame decoder and a Mux, the way
// bytes from a peer arrive, split into chunks chosen by the input itself.
#include <cstdint>
#include <string>

#include "proto/hello.h"
#include "proto/mux.h"

namespace {

struct Sink : mproxy::proto::MuxDelegate {
  void OnHello(const mproxy::proto::Hello&, uint32_t) override {}
  void OnMessage(mproxy::proto::Message&&) override {}
  void OnData(uint32_t channel, uint32_t fd, std::string_view bytes) override {
    mux->Consume(channel, fd, bytes.size());
    mux->Write(channel, fd, bytes);  // echo, to drive the send side too
  }
  void OnEof(uint32_t channel, uint32_t fd) override { mux->WriteEof(channel, fd); }
  void OnWritable(uint32_t, uint32_t) override {}
  mproxy::proto::Mux* mux = nullptr;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mproxy::proto;
  if (size == 0) return 0;
  Sink sink;
  Mux mux(&sink, MakeHello("fuzz", {}));
  sink.mux = &mux;
  // The first byte picks the chunk size; the rest is the stream.
  size_t chunk = (data[0] % 64) + 1;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string out;
  for (size_t off = 0; off < in.size(); off += chunk) {
    if (!mux.Feed(in.substr(off, chunk)).ok()) break;
    out.clear();
    mux.TakeOutput(&out, 1 << 20);
  }
  return 0;
}
