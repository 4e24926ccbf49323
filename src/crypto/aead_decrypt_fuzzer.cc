// Fuzzes Aead::Decrypt for every algorithm: first byte picks the algorithm,
// the next 32 are the key, the rest splits into associated data and
// ciphertext.  Decryption of arbitrary input must fail cleanly (checked:
// a decryption that succeeds aborts).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "crypto/aead.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using keyward::crypto::AeadAlgorithm;
  if (size < 34) return 0;
  const auto algorithm = static_cast<AeadAlgorithm>(1 + data[0] % 3);
  auto aead = keyward::crypto::NewAead(
      algorithm, keyward::SecretData::CopyFrom(
                     absl::string_view(reinterpret_cast<const char*>(data + 1), 32)));
  if (!aead.ok()) std::abort();
  absl::string_view rest(reinterpret_cast<const char*>(data + 33), size - 33);
  const size_t aad_len =
      static_cast<size_t>(static_cast<uint8_t>(rest[0]) % 16) < rest.size()
          ? static_cast<uint8_t>(rest[0]) % 16
          : 0;
  auto pt = (*aead)->Decrypt(rest.substr(1 + aad_len), rest.substr(1, aad_len));
  // Nothing here was encrypted under the key: a success is a forgery.
  if (pt.ok()) std::abort();
  return 0;
}
