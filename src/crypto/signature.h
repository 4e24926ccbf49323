// ECDSA P-256 / SHA-256 signatures: verification (for audit checkpoints,
// anywhere) and the DER encodings HSMs and OpenSSL disagree on.
#ifndef KEYWARD_CRYPTO_SIGNATURE_H_
#define KEYWARD_CRYPTO_SIGNATURE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace keyward::crypto {

// OK when `signature` (DER) is a valid ECDSA-SHA256 signature of `data`
// under the P-256 public key `public_key_pem`.  Errors: kInvalidArgument for
// an unusable key, kDataLoss ("signature does not verify") otherwise.
[[nodiscard]] absl::Status VerifyEcdsaP256(absl::string_view public_key_pem,
                                           absl::string_view data,
                                           absl::string_view signature);

// PKCS#11 returns r || s (64 bytes); X.509 and OpenSSL use DER.
absl::StatusOr<std::string> EcdsaRawToDer(absl::string_view raw);

// A P-256 public key in PEM from an uncompressed point (0x04 || X || Y).
absl::StatusOr<std::string> P256PublicKeyPemFromPoint(absl::string_view point);

// SHA-256 of the DER SubjectPublicKeyInfo, hex: a key's fingerprint.
absl::StatusOr<std::string> PublicKeyFingerprint(absl::string_view public_key_pem);

}  // namespace keyward::crypto

#endif  // KEYWARD_CRYPTO_SIGNATURE_H_
