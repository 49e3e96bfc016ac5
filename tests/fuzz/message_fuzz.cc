// libFuzzer target: DecodeMessage on arbitrary payloads. Anything that
// decodes must re-encode and decode to the same message.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "proto/codec.h"
#include "proto/frame.h"
#include "proto/fs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mproxy::proto;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto m = DecodeMessage(in);
  if (!m.ok() || std::holds_alternative<UnknownMessage>(*m)) return 0;
  std::string frame;
  if (!EncodeFrame(*m, &frame).ok()) return 0;  // may grow past the limit
  auto again = DecodeMessage(std::string_view(frame).substr(kFrameHeaderSize));
  if (!again.ok() || !(*again == *m)) std::abort();
  // A file operation that parses rebuilds into a request that parses to
  // the same operation (unknown field keys are dropped on the way).
  if (auto* fr = std::get_if<FsRequest>(&*m)) {
    if (auto op = ParseFsRequest(*fr); op.ok()) {
      FsRequest rebuilt = MakeFsRequest(fr->id, *op);
      auto op2 = ParseFsRequest(rebuilt);
      if (!op2.ok() || !(MakeFsRequest(fr->id, *op2) == rebuilt)) std::abort();
    }
  }
  return 0;
}
