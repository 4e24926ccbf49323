// The body's frame layout and the byte views its sealing code works in,
// shared by the frame writer, the frame reader and the header code.
#ifndef KEYWARD_FORMAT_FRAME_LAYOUT_H_
#define KEYWARD_FORMAT_FRAME_LAYOUT_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "keyward/errors.h"
#include "keyward/message.h"

namespace keyward::format {

// A frame on the wire: type byte, 4-byte length (final frame only), then
// ciphertext and tag.  The encryptor seals in place behind this prefix.
inline constexpr size_t kFramePrefix = 5;

inline absl::Status FrameLimit() {
  return MakeError(absl::StatusCode::kInvalidArgument,
                   ErrorCode::kLimitExceeded,
                   absl::StrCat("the message has more than ",
                                FormatLimits::kMaxFrames,
                                " frames, the format's limit; use a larger "
                                "frame size"));
}

inline absl::Span<uint8_t> MutableBytes(std::string& s) {
  return {reinterpret_cast<uint8_t*>(s.data()), s.size()};
}

inline absl::string_view View(const uint8_t* p, size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}

}  // namespace keyward::format

#endif  // KEYWARD_FORMAT_FRAME_LAYOUT_H_
