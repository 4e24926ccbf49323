// Fuzzes KeyWrap::Unwrap with a fixed key-encryption key.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "crypto/key_wrap.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto* wrap = [] {
    auto w = keyward::crypto::KeyWrap::New(
        keyward::SecretData::CopyFrom(std::string(32, '\x17')));
    if (!w.ok()) std::abort();
    return w->release();
  }();
  auto key = wrap->Unwrap(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  // Nothing here was wrapped under the fixed KEK: an unwrap that succeeds
  // is a forgery.
  if (key.ok()) std::abort();
  return 0;
}
