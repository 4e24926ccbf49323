// AES key wrap with padding (AES-KWP, RFC 5649 / NIST SP 800-38F) under a
// 256-bit key-encryption key.  Deterministic and authenticated (a 64-bit
// integrity check): suitable only for wrapping uniformly random key material,
// never for data.  See docs/decisions/0005.
//
// Thread-safety: const methods, safe to call concurrently.
#ifndef KEYWARD_CRYPTO_KEY_WRAP_H_
#define KEYWARD_CRYPTO_KEY_WRAP_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "keyward/secret_data.h"

namespace keyward::crypto {

inline constexpr size_t kKeyWrapKekSize = 32;
// Keys to wrap: 1 byte (RFC 5649's minimum) up to 64 KiB.
inline constexpr size_t kKeyWrapMaxKeySize = 65536;

class KeyWrap {
 public:
  // Errors: kInvalidArgument unless kek.size() == kKeyWrapKekSize.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<KeyWrap>> New(
      const SecretData& kek);

  // Wraps `key` (1 .. kKeyWrapMaxKeySize bytes).  The result is
  // 8 + the key size rounded up to a multiple of 8 bytes.
  // Errors: kInvalidArgument for an empty or oversized key.
  [[nodiscard]] absl::StatusOr<std::string> Wrap(const SecretData& key) const;

  // Unwraps and verifies.  Errors: kInvalidArgument when the input has an
  // impossible length or fails the integrity check (wrong KEK or modified);
  // nothing is released then.
  [[nodiscard]] absl::StatusOr<SecretData> Unwrap(
      absl::string_view wrapped) const;

 private:
  explicit KeyWrap(SecretData kek) : kek_(std::move(kek)) {}
  const SecretData kek_;
};

}  // namespace keyward::crypto

#endif  // KEYWARD_CRYPTO_KEY_WRAP_H_
