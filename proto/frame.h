// Framing: each frame is a 4-byte big-endian payload length followed by
// exactly one CBOR item. Lengths above kMaxFrameSize are rejected as soon as
// the header is seen, before any buffer grows to hold them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace mproxy::proto {

inline constexpr size_t kFrameHeaderSize = 4;
inline constexpr size_t kMaxFrameSize = 1 << 20;  // payload bytes

// Starts a frame at the end of `out`: appends a placeholder header and returns
// its offset, to be completed by FinishFrame once the payload is appended.
size_t BeginFrame(std::string* out);
// Writes the header at `start`. Fails (and removes the partial frame) when
// the payload exceeds kMaxFrameSize.
Status FinishFrame(std::string* out, size_t start);

// Splits a byte stream arriving in arbitrary chunks into frame payloads.
// Single-threaded; owned by one connection.
class FrameDecoder {
 public:
  // Appends received bytes.
  void Feed(std::string_view bytes);

  // The next complete payload, nullopt when more bytes are needed, or an
  // error for a length over kMaxFrameSize (the stream is then unusable).
  // The view stays valid until the next call to Feed or Next.
  Result<std::optional<std::string_view>> Next();

  // Bytes held that are not yet part of a returned frame.
  size_t buffered() const { return buf_.size() - start_; }

 private:
  std::string buf_;
  size_t start_ = 0;
};

}  // namespace mproxy::proto
