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
// Frames that arrive whole inside one chunk are returned in place, without a
// copy; only a frame split across chunks is gathered in an internal buffer
// (at most one frame, so at most kMaxFrameSize + 4 bytes). Single-threaded;
// owned by one connection.
class FrameDecoder {
 public:
  // Hands over received bytes. They are not copied: the caller keeps them
  // alive and unchanged until Next() has returned nullopt or an error.
  void Feed(std::string_view bytes);

  // The next complete payload, nullopt when more bytes are needed (whatever
  // is left of the fed chunk has then been saved), or an error for a length
  // over kMaxFrameSize (the stream is then unusable). The view stays valid
  // until the next call to Feed or Next.
  Result<std::optional<std::string_view>> Next();

  // Bytes held that are not yet part of a returned frame.
  size_t buffered() const { return buf_.size() - start_ + in_.size(); }

 private:
  Result<uint32_t> Length(const char* header) const;
  void Save(size_t n);  // moves n bytes from in_ to buf_

  std::string buf_;       // a frame split across chunks, from start_
  size_t start_ = 0;
  std::string_view in_;   // the unread rest of the chunk given to Feed
};

}  // namespace mproxy::proto
