// HKDF (RFC 5869) with SHA-256 or SHA-512, for deriving keys from keys.
#ifndef KEYWARD_CRYPTO_HKDF_H_
#define KEYWARD_CRYPTO_HKDF_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/hash.h"
#include "keyward/secret_data.h"

namespace keyward::crypto {

// HKDF-Extract then HKDF-Expand: `size` bytes from input keying material
// `ikm`, `salt` (empty means HashLen zero bytes, as RFC 5869 says) and
// context `info`.
// Errors: kInvalidArgument when `size` is 0 or larger than 255 * HashLen
// (8160 bytes for SHA-256, 16320 for SHA-512).
// Thread-safe.
[[nodiscard]] absl::StatusOr<SecretData> Hkdf(HashFunction hash,
                                              absl::string_view ikm,
                                              absl::string_view salt,
                                              absl::string_view info,
                                              size_t size);

// HKDF-Expand only (RFC 5869 section 2.3), for a `prk` that is already a
// uniformly random key of at least HashLen bytes (a data key drawn from the
// CSPRNG): section 3.3 of the RFC allows skipping Extract then.
// Errors: kInvalidArgument for a short prk or an invalid size.
[[nodiscard]] absl::StatusOr<SecretData> HkdfExpand(HashFunction hash,
                                                    absl::string_view prk,
                                                    absl::string_view info,
                                                    size_t size);

}  // namespace keyward::crypto

#endif  // KEYWARD_CRYPTO_HKDF_H_
