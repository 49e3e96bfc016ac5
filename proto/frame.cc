// Frame header encoding and the incremental frame splitter.
#include "proto/frame.h"

#include <algorithm>

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
  // Next() leaves nothing unread before it asks for more (or fails, and then
  // the stream is dead anyway).
  in_ = bytes;
  if (start_ == buf_.size()) {
    buf_.clear();
    start_ = 0;
  } else if (start_ > 0) {
    buf_.erase(0, start_);  // the tail of a partial frame: small
    start_ = 0;
  }
}

Result<uint32_t> FrameDecoder::Length(const char* header) const {
  const auto* h = reinterpret_cast<const unsigned char*>(header);
  uint32_t len = (uint32_t{h[0]} << 24) | (uint32_t{h[1]} << 16) | (uint32_t{h[2]} << 8) |
                 uint32_t{h[3]};
  if (len > kMaxFrameSize) {
    return Error("frame: length " + std::to_string(len) +
                 " exceeds the maximum frame size of " + std::to_string(kMaxFrameSize));
  }
  return len;
}

void FrameDecoder::Save(size_t n) {
  buf_.append(in_.substr(0, n));
  in_.remove_prefix(n);
}

Result<std::optional<std::string_view>> FrameDecoder::Next() {
  using Payload = std::optional<std::string_view>;
  if (start_ < buf_.size()) {
    // Finish the frame that began in an earlier chunk.
    size_t have = buf_.size() - start_;
    if (have < kFrameHeaderSize) Save(std::min(kFrameHeaderSize - have, in_.size()));
    have = buf_.size() - start_;
    if (have < kFrameHeaderSize) return Payload();
    auto len = Length(buf_.data() + start_);
    if (!len) return len.error();
    size_t total = kFrameHeaderSize + *len;
    if (have < total) Save(std::min(total - have, in_.size()));
    if (buf_.size() - start_ < total) return Payload();
    std::string_view payload(buf_.data() + start_ + kFrameHeaderSize, *len);
    start_ += total;
    return Payload(payload);
  }
  if (start_ > 0) {  // the previous payload was the last of buf_: reuse it
    buf_.clear();
    start_ = 0;
  }
  if (in_.size() < kFrameHeaderSize) {
    Save(in_.size());
    return Payload();
  }
  auto len = Length(in_.data());
  if (!len) return len.error();
  size_t total = kFrameHeaderSize + *len;
  if (in_.size() < total) {
    Save(in_.size());
    return Payload();
  }
  std::string_view payload = in_.substr(kFrameHeaderSize, *len);
  in_.remove_prefix(total);
  return Payload(payload);
}

}  // namespace mproxy::proto
