// Writes the committed seed corpora: every sample message as a payload (for
// message_fuzz) and as a framed stream after a Hello (for stream_fuzz).
// Usage: fuzz_seed_gen CORPUS_ROOT
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "proto/codec.h"
#include "proto/frame.h"
#include "proto/hello.h"
#include "tests/fakes/sample_messages.h"

namespace {
void WriteFile(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
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
  std::printf("wrote %d seeds\n", i);
  return 0;
}
