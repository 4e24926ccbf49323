// Authenticated encryption with associated data (AEAD).
//
// Aead is the misuse-resistant interface: it draws a fresh random nonce for
// every message from crypto/random.h and returns nonce || ciphertext || tag.
// Callers never see or choose nonces.  See docs/decisions/0002 and 0003 for
// the algorithms and the nonce bounds.
//
// Thread-safety: all methods are const and safe to call concurrently.
// Errors: outputs are returned only on success; on failure nothing is
// returned (and internal buffers holding plaintext are wiped).
#ifndef KEYWARD_CRYPTO_AEAD_H_
#define KEYWARD_CRYPTO_AEAD_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "keyward/secret_data.h"

namespace keyward::crypto {

enum class AeadAlgorithm : uint8_t {
  kAes256Gcm = 1,          // 32-byte key, 12-byte nonce, 16-byte tag
  kChaCha20Poly1305 = 2,   // RFC 8439: 32-byte key, 12-byte nonce
  kXChaCha20Poly1305 = 3,  // 32-byte key, 24-byte nonce (libsodium)
};

inline constexpr size_t kAeadKeySize = 32;
inline constexpr size_t kAeadTagSize = 16;

// "AES-256-GCM", "ChaCha20-Poly1305" or "XChaCha20-Poly1305".
absl::string_view AeadAlgorithmName(AeadAlgorithm algorithm);
// Nonce length in bytes for `algorithm` (12 or 24).
size_t AeadNonceSize(AeadAlgorithm algorithm);

class Aead {
 public:
  virtual ~Aead() = default;

  // Encrypts `plaintext` under a fresh random nonce, authenticating
  // `associated_data`.  Returns nonce || ciphertext || tag, which is
  // plaintext.size() + AeadNonceSize() + 16 bytes.
  // Errors: kInvalidArgument if the plaintext exceeds 1 GiB; kInternal if
  // the random generator or OpenSSL fails.
  [[nodiscard]] virtual absl::StatusOr<std::string> Encrypt(
      absl::string_view plaintext,
      absl::string_view associated_data) const = 0;

  // Verifies and decrypts nonce || ciphertext || tag.
  // Errors: kInvalidArgument when the input is too short, or when it or the
  // associated data is not authentic (the message says which); no plaintext
  // is released in either case.
  [[nodiscard]] virtual absl::StatusOr<SecretData> Decrypt(
      absl::string_view ciphertext,
      absl::string_view associated_data) const = 0;

  virtual AeadAlgorithm algorithm() const = 0;
};

// Returns an Aead for `algorithm` keyed with a copy of `key`.
// Errors: kInvalidArgument unless key.size() == kAeadKeySize.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Aead>> NewAead(
    AeadAlgorithm algorithm, const SecretData& key);

}  // namespace keyward::crypto

#endif  // KEYWARD_CRYPTO_AEAD_H_
