// Frame header encoding and the incremental frame splitter.
#include "proto/frame.h"

namespace mproxy::proto {

size_t BeginFrame(std::string* out) {
  size_t start = out->size();
  out->append(kFrameHeaderSize, '\0');
  return start;
}

Status FinishFrame(std::string* out, size_t start) {
  size_t len = out->size() - start - kFrameHeaderSize;
  if (len > kMaxFrameSize) {
    out->resize(start);
    return Error("frame: message of " + std::to_string(len) +
                 " bytes exceeds the maximum frame size of " +
                 std::to_string(kMaxFrameSize));
  }
  char* h = out->data() + start;
  h[0] = static_cast<char>((len >> 24) & 0xff);
  h[1] = static_cast<char>((len >> 16) & 0xff);
  h[2] = static_cast<char>((len >> 8) & 0xff);
  h[3] = static_cast<char>(len & 0xff);
  return Ok();
}

void FrameDecoder::Feed(std::string_view bytes) {
  // Drop consumed bytes before growing, so the buffer stays near one frame.
  if (start_ > 0 && (start_ == buf_.size() || start_ >= buf_.size() / 2)) {
    buf_.erase(0, start_);
    start_ = 0;
  }
  buf_.append(bytes);
}

Result<std::optional<std::string_view>> FrameDecoder::Next() {
  size_t avail = buf_.size() - start_;
  if (avail < kFrameHeaderSize) return std::optional<std::string_view>();
  const auto* h = reinterpret_cast<const unsigned char*>(buf_.data() + start_);
  uint32_t len = (uint32_t{h[0]} << 24) | (uint32_t{h[1]} << 16) |
                 (uint32_t{h[2]} << 8) | uint32_t{h[3]};
  if (len > kMaxFrameSize) {
    return Error("frame: length " + std::to_string(len) +
                 " exceeds the maximum frame size of " + std::to_string(kMaxFrameSize));
  }
  if (avail < kFrameHeaderSize + len) return std::optional<std::string_view>();
  std::string_view payload(buf_.data() + start_ + kFrameHeaderSize, len);
  start_ += kFrameHeaderSize + len;
  return std::optional<std::string_view>(payload);
}

}  // namespace mproxy::proto
