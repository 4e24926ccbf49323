// Deterministic AEAD: AES-256-SIV (RFC 5297), for equality search over
// encrypted fields.  Equal (plaintext, associated data) pairs give equal
// ciphertexts, which is the point and the leak: use it only where equality
// must be visible.  Output is the 16-byte synthetic IV followed by the
// ciphertext.  Any plaintext, the empty one included, is accepted.  Built
// from OpenSSL's AES-CMAC and AES-CTR (S2V and CTR of RFC 5297) rather than
// OpenSSL 3.0's SIV cipher, which cannot encrypt an empty plaintext.  See
// docs/decisions/0004 and 0023.
//
// Thread-safety: const methods, safe to call concurrently.
#ifndef KEYWARD_CRYPTO_DETERMINISTIC_AEAD_H_
#define KEYWARD_CRYPTO_DETERMINISTIC_AEAD_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "keyward/secret_data.h"

namespace keyward::crypto {

// AES-256-SIV takes two AES-256 keys: 64 bytes.
inline constexpr size_t kAesSivKeySize = 64;
inline constexpr size_t kAesSivTagSize = 16;

class DeterministicAead {
 public:
  // Errors: kInvalidArgument unless key.size() == kAesSivKeySize.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<DeterministicAead>> New(
      const SecretData& key);
  ~DeterministicAead();

  // Returns SIV || ciphertext (plaintext.size() + 16 bytes; 16 bytes for an
  // empty plaintext).
  // Errors: kInvalidArgument for inputs over 1 GiB; kInternal from OpenSSL.
  [[nodiscard]] absl::StatusOr<std::string> EncryptDeterministically(
      absl::string_view plaintext, absl::string_view associated_data) const;

  // Errors: kInvalidArgument when the input is shorter than the SIV or is not
  // authentic under this key and associated data.  Nothing is released then:
  // the tag is compared in constant time and the candidate plaintext wiped.
  [[nodiscard]] absl::StatusOr<SecretData> DecryptDeterministically(
      absl::string_view ciphertext, absl::string_view associated_data) const;

 private:
  struct State;  // keyed CMAC context, CTR key, CMAC(K1, 0^128)
  explicit DeterministicAead(std::unique_ptr<State> state);
  const std::unique_ptr<const State> state_;
};

}  // namespace keyward::crypto

#endif  // KEYWARD_CRYPTO_DETERMINISTIC_AEAD_H_
