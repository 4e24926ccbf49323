// ECDSA signatures over OpenSSL: P-256 / SHA-256 verification (audit
// checkpoints) with the DER encodings HSMs and OpenSSL disagree on, and
// P-384 / SHA-384 streaming signatures for signed messages
// (docs/decisions/0017-signed-messages.md).
#ifndef KEYWARD_CRYPTO_SIGNATURE_H_
#define KEYWARD_CRYPTO_SIGNATURE_H_

#include <memory>
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

// An ephemeral ECDSA P-384 key that signs one stream of bytes with SHA-384
// (one message of the signed suite).  The private key lives only in this
// object and is freed (cleansed by OpenSSL) with it.
// Thread-safety: not thread-safe; one message at a time.
class EcdsaP384Signer {
 public:
  // A fresh key pair from OpenSSL's CSPRNG.  Errors: kInternal.
  static absl::StatusOr<std::unique_ptr<EcdsaP384Signer>> Generate();
  // For frozen test vectors only: the key with this 48-byte private scalar.
  static absl::StatusOr<std::unique_ptr<EcdsaP384Signer>> FromPrivateScalarForTesting(
      absl::string_view scalar);
  ~EcdsaP384Signer();
  EcdsaP384Signer(const EcdsaP384Signer&) = delete;
  EcdsaP384Signer& operator=(const EcdsaP384Signer&) = delete;

  // The public key as a compressed point (49 bytes: 0x02/0x03 || X).
  const std::string& public_key() const { return public_key_; }
  // Adds bytes to what is signed.  Errors: kInternal.
  absl::Status Update(absl::string_view data);
  // The DER signature of everything added; the signer is spent afterwards.
  absl::StatusOr<std::string> Finish();

 private:
  EcdsaP384Signer() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string public_key_;
};

// Checks an ECDSA P-384 / SHA-384 signature over a stream of bytes.
class EcdsaP384Verifier {
 public:
  // The key from a compressed (or uncompressed) point.  Errors:
  // kInvalidArgument when it is not a point on P-384.
  static absl::StatusOr<std::unique_ptr<EcdsaP384Verifier>> FromPoint(absl::string_view point);
  ~EcdsaP384Verifier();
  EcdsaP384Verifier(const EcdsaP384Verifier&) = delete;
  EcdsaP384Verifier& operator=(const EcdsaP384Verifier&) = delete;

  absl::Status Update(absl::string_view data);
  // True when `der` is a valid signature of everything added.
  bool Verify(absl::string_view der);

 private:
  EcdsaP384Verifier() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The longest DER ECDSA P-384 signature.
inline constexpr size_t kMaxEcdsaP384SignatureSize = 104;
inline constexpr size_t kEcdsaP384CompressedPointSize = 49;

}  // namespace keyward::crypto

#endif  // KEYWARD_CRYPTO_SIGNATURE_H_
