// Writes the committed seed corpora: every sample message as a payload (for
// message_fuzz) and as a framed stream after a Hello (for stream_fuzz); every
// shim sample as a frame body and as a chunked stream (for shim_wire_fuzz).
// Usage: fuzz_seed_gen CORPUS_ROOT
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "proto/codec.h"
#include "proto/frame.h"
#include "proto/hello.h"
#include "proto/shim_wire.h"
#include "tests/fakes/sample_messages.h"
#include "tests/fakes/shim_samples.h"

namespace {
void WriteFile(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

// shim_wire_fuzz reads an input both as one frame body and, after a byte
// that picks the chunk size, as a stream of frames.
int WriteShimSeeds(const std::filesystem::path& dir) {
  namespace shim = mproxy::proto::shim;
  std::filesystem::create_directories(dir);
  int i = 0;
  std::string all(1, '\x05');
  for (const shim::Message& m : mproxy::testing::ShimSampleMessages()) {
    std::string frame = shim::Encode(m);
    std::string name = std::to_string(i++) + "-" + shim::TypeName(shim::TypeOf(m));
    WriteFile(dir / ("body-" + name), frame.substr(4));
    WriteFile(dir / ("stream-" + name), std::string(1, '\x00') + frame);
    all += frame;
  }
  WriteFile(dir / "stream-all-messages", all);
  return i;
}
}  // namespace

int main(int argc, char** argv) {
  using namespace mproxy::proto;
  if (argc != 2) return 2;
  std::filesystem::path root(argv[1]);
  std::filesystem::create_directories(root / "message");
  std::filesystem::create_directories(root / "stream");
  std::string hello;
  if (!EncodeFrame(MakeHello("seed", {"exec"}), &hello).ok()) return 1;
  int i = 0;
  std::string all = hello;
  for (const Message& m : mproxy::testing::SampleMessages()) {
    std::string frame;
    if (!EncodeFrame(m, &frame).ok()) return 1;
    std::string name = std::to_string(i++) + "-" + MessageName(m);
    WriteFile(root / "message" / name, frame.substr(kFrameHeaderSize));
    WriteFile(root / "stream" / name, std::string(1, '\x07') + hello + frame);
    if (!std::holds_alternative<Hello>(m)) all += frame;
  }
  WriteFile(root / "stream" / "all-messages", std::string(1, '\x00') + all);
  int shim = WriteShimSeeds(root / "shim_wire");
  std::printf("wrote %d seeds and %d shim seeds\n", i, shim);
  return 0;
}
