// Encoding typed messages into frames and decoding frame payloads back.
// Wire form of a message: a CBOR array [type, {key: value, ...}] where the
// keys are the field numbers declared in messages.h.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "proto/messages.h"

namespace mproxy::proto {

// Appends one complete frame (header + CBOR payload) to `out`. Fails, leaving
// `out` unchanged, when the message would exceed kMaxFrameSize or is an
// UnknownMessage.
Status EncodeFrame(const Message& m, std::string* out);

// Same bytes as EncodeFrame(Data{channel, fd, bytes}) without building a Data.
Status EncodeDataFrame(uint32_t channel, uint32_t fd, std::string_view bytes,
                       std::string* out);

// Decodes one frame payload. A well-formed message of an unknown type gives
// UnknownMessage; anything malformed (wrong CBOR types, missing required
// fields, duplicate fields, trailing bytes) gives an error naming the message
// and field.
Result<Message> DecodeMessage(std::string_view payload);

// A Data message whose payload points into the frame it was decoded from.
struct DataView {
  uint32_t channel = 0;
  uint32_t fd = 0;
  std::string_view bytes;

  template <class S, class V>
  static void Fields(S& s, V& v) {
    Data::Fields(s, v);  // same numbers, names and rules as Data
  }
};

// Decodes `payload` as a Data message without copying its bytes, when it is
// one: nullopt for any other message type (decode those with DecodeMessage).
// Errors are the ones DecodeMessage would give. The view is valid as long as
// `payload` is.
Result<std::optional<DataView>> DecodeDataView(std::string_view payload);

// The message number of `m` (UnknownMessage gives a value past kError).
MessageType TypeOf(const Message& m);

}  // namespace mproxy::proto
