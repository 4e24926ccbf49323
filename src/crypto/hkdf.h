// HKDF (RFC 5869) with SHA-256 or SHA-512, for deriving keys from keys.
#ifndef KEYWARD_CRYPTO_HKDF_H_
#define KEYWARD_CRYPTO_HKDF_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
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

// HKDF-Expand with SHA-256 under one prk, many times (RFC 5869 section 2.3:
// T(i) = HMAC(prk, T(i-1) || info || i)).  HMAC-SHA-256 is keyed once
// (OpenSSL EVP_MAC) and reset to its keyed state for each block, so a
// 64-byte expansion is two HMACs without EVP_KDF's per-call context setup
// and key schedule: 742 ns instead of 1,982 ns CPU (crypto_bench, same run;
// docs/decisions/0033).
// Produces exactly what HkdfExpand(kSha256, prk, info, size) does.
//
// Thread-safety: Expand is safe to call concurrently; one caller at a time
// uses the keyed context, a concurrent one works on a copy of it.
class HkdfSha256Expander {
 public:
  // Errors: kInvalidArgument for a prk under 32 bytes.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HkdfSha256Expander>> New(
      absl::string_view prk);
  ~HkdfSha256Expander();
  HkdfSha256Expander(const HkdfSha256Expander&) = delete;
  HkdfSha256Expander& operator=(const HkdfSha256Expander&) = delete;

  // Fills `out` (1 to 8160 bytes).  Errors: kInvalidArgument for another
  // size or an info over 1 GiB; kInternal from OpenSSL.  On error `out` is
  // zeroed.
  [[nodiscard]] absl::Status Expand(absl::string_view info, absl::Span<uint8_t> out) const;

 private:
  struct Contexts;
  explicit HkdfSha256Expander(std::unique_ptr<Contexts> contexts);
  const std::unique_ptr<Contexts> contexts_;
};

}  // namespace keyward::crypto

#endif  // KEYWARD_CRYPTO_HKDF_H_
