// AEAD with an explicit nonce, for code inside Keyward that derives nonces
// systematically (the message format derives one per frame from a fresh
// per-message key, so a (key, nonce) pair can never repeat) and for the
// known-answer tests.  Never expose this outside src/: public APIs generate
// their nonces themselves (crypto/aead.h).
//
// Thread-safety: const methods, safe to call concurrently.
#ifndef KEYWARD_CRYPTO_INTERNAL_NONCE_AEAD_H_
#define KEYWARD_CRYPTO_INTERNAL_NONCE_AEAD_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "crypto/aead.h"
#include "keyward/secret_data.h"

namespace keyward::crypto::internal {

class NonceAead {
 public:
  virtual ~NonceAead() = default;

  // Encrypts `plaintext` into `out`, which must be exactly
  // plaintext.size() + kAeadTagSize bytes (ciphertext || tag).  `out` may
  // start at plaintext.data() (in-place) but must not otherwise overlap it.
  // Errors: kInvalidArgument for a wrong nonce or output size; on any error
  // `out` is zeroed.
  [[nodiscard]] virtual absl::Status Seal(absl::string_view nonce,
                                          absl::string_view plaintext,
                                          absl::string_view associated_data,
                                          absl::Span<uint8_t> out) const = 0;

  // Verifies and decrypts ciphertext || tag into `out`, which must be exactly
  // ciphertext_and_tag.size() - kAeadTagSize bytes.  Same aliasing rule as
  // Seal.  Errors: kInvalidArgument for a wrong size or an inauthentic
  // input; on any error `out` is zeroed, so no unverified plaintext escapes.
  [[nodiscard]] virtual absl::Status Open(absl::string_view nonce,
                                          absl::string_view ciphertext_and_tag,
                                          absl::string_view associated_data,
                                          absl::Span<uint8_t> out) const = 0;

  virtual AeadAlgorithm algorithm() const = 0;
  size_t nonce_size() const { return AeadNonceSize(algorithm()); }
};

// Errors: kInvalidArgument unless key.size() == kAeadKeySize.
[[nodiscard]] absl::StatusOr<std::unique_ptr<NonceAead>> NewNonceAead(
    AeadAlgorithm algorithm, const SecretData& key);

// AES-256-GCM for many small records under one key (field values): the
// same algorithm and bytes as NewNonceAead(kAes256Gcm), through libsodium's
// AES-NI code, which costs a fraction of OpenSSL's EVP per call; EVP where
// the CPU lacks AES-NI or CLMUL.  Errors: as NewNonceAead.
[[nodiscard]] absl::StatusOr<std::unique_ptr<NonceAead>> NewAesGcmForSmallRecords(
    const SecretData& key);
// The same from key bytes the caller wipes (the message format's key
// schedule keeps them on its stack); the key is not copied.
[[nodiscard]] absl::StatusOr<std::unique_ptr<NonceAead>> NewAesGcmForSmallRecords(
    absl::Span<const uint8_t> key);
// Whether NewAesGcmForSmallRecords uses libsodium on this CPU.
bool SmallRecordAesGcmIsAccelerated();

}  // namespace keyward::crypto::internal

#endif  // KEYWARD_CRYPTO_INTERNAL_NONCE_AEAD_H_
