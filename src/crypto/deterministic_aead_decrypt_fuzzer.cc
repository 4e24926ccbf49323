// Fuzzes DeterministicAead::DecryptDeterministically with a fixed key.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "crypto/deterministic_aead.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto* daead = [] {
    auto d = keyward::crypto::DeterministicAead::New(
        keyward::SecretData::CopyFrom(std::string(64, '\x42')));
    if (!d.ok()) std::abort();
    return d->release();
  }();
  absl::string_view in(reinterpret_cast<const char*>(data), size);
  // Nothing here was encrypted under the fixed key: a success is a forgery.
  if (daead->DecryptDeterministically(in, "ad").ok()) std::abort();
  // Valid ciphertexts are worth reaching too: encrypt and decrypt the input.
  auto ct = daead->EncryptDeterministically(in, "ad");
  if (!ct.ok()) std::abort();
  auto back = daead->DecryptDeterministically(*ct, "ad");
  if (!back.ok() || back->AsStringView() != in) std::abort();
  return 0;
}
