// Big-endian integer encoding used by every multi-byte field of the format.
#ifndef KEYWARD_FORMAT_WIRE_H_
#define KEYWARD_FORMAT_WIRE_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace keyward::format {

// Appends the low `width` bytes of `value`, most significant first.
// REQUIRES: value < 2^(8*width).
inline void AppendBigEndian(std::string* out, uint64_t value, size_t width) {
  for (size_t i = width; i > 0; --i) {
    out->push_back(static_cast<char>((value >> (8 * (i - 1))) & 0xff));
  }
}

inline void StoreBigEndian(uint8_t* out, uint64_t value, size_t width) {
  for (size_t i = 0; i < width; ++i) {
    out[i] = static_cast<uint8_t>(value >> (8 * (width - 1 - i)));
  }
}

// REQUIRES: bytes.size() <= 8.
inline uint64_t LoadBigEndian(absl::string_view bytes) {
  uint64_t v = 0;
  for (char c : bytes) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

}  // namespace keyward::format

#endif  // KEYWARD_FORMAT_WIRE_H_
