// The single source of randomness in Keyward.  Every key, nonce, message id
// and salt comes from here: OpenSSL's private DRBG (RAND_priv_bytes), which is
// seeded from getrandom(2).  Nothing else in the tree may use rand(),
// std::random_device or another generator for anything security relevant.
//
// Thread-safe.
#ifndef KEYWARD_CRYPTO_RANDOM_H_
#define KEYWARD_CRYPTO_RANDOM_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "keyward/secret_data.h"

namespace keyward::crypto {

// Fills `out` with cryptographically secure random bytes.  On error (the
// DRBG could not be seeded) `out` is zeroed and kInternal is returned.
[[nodiscard]] absl::Status FillRandom(absl::Span<uint8_t> out);

// A new random key of `size` bytes in locked memory.
[[nodiscard]] absl::StatusOr<SecretData> GenerateKey(size_t size);

// `size` random bytes that are not secret (message ids, nonces, salts).
[[nodiscard]] absl::StatusOr<std::string> RandomBytes(size_t size);
// The same into `out` (for nonces written straight into a ciphertext).
[[nodiscard]] absl::Status FillPublicRandom(absl::Span<uint8_t> out);

}  // namespace keyward::crypto

#endif  // KEYWARD_CRYPTO_RANDOM_H_
