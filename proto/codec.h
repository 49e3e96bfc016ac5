// Encoding typed messages into frames and decoding frame payloads back.
// Wire form of a message: a CBOR array [type, {key: value, ...}] where the
// keys are the field numbers declared in messages.h.
#pragma once

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

// The message number of `m` (UnknownMessage gives a value past kError).
MessageType TypeOf(const Message& m);

}  // namespace mproxy::proto
