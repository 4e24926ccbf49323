// RawAesKeyring: a keyring over a local 256-bit key held in a file.
//
// For tests, offline use and disaster-recovery copies only.  A raw key file
// is key material on disk: keep it away from the data it protects (the CLI
// refuses to write ciphertext into the key file's directory), mode 0600, and
// prefer the KMS keyring in production, where keys never leave keywardd.
//
// Data keys are generated locally (crypto CSPRNG) and wrapped with
// AES-256-GCM under the raw key, with the encryption context as associated
// data, so a wrapped key only unwraps with the same context.  Messages it
// protects carry environment "offline" and key name "raw/<key id>".
// Random 96-bit nonces bound its use to 2^30 wraps (docs/decisions/0003).
//
// Thread-safe.
#ifndef KEYWARD_RAW_AES_KEYRING_H_
#define KEYWARD_RAW_AES_KEYRING_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "keyward/keyring.h"
#include "keyward/secret_data.h"

namespace keyward {
namespace crypto {
class Aead;
}

class RawAesKeyring final : public Keyring {
 public:
  static constexpr const char* kProviderId = kRawAesProviderId;
  static constexpr char kEnvironment[] = "offline";

  // A keyring over a freshly generated key (from Keyward's CSPRNG).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RawAesKeyring>>
  Generate();
  // A keyring over existing key bytes.  Errors: kInvalidArgument unless 32
  // bytes.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RawAesKeyring>> FromKey(
      const SecretData& key);
  // Loads a key file written by WriteKeyFile.  Errors: kNotFound,
  // kPermissionDenied, or kInvalidArgument for a file that is not a
  // Keyward raw key or is corrupt (its id does not match its key).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RawAesKeyring>> LoadKeyFile(
      const std::string& path);

  // Writes the key to a new file, mode 0600, refusing to overwrite anything
  // (kAlreadyExists), flushed to disk before returning.
  [[nodiscard]] absl::Status WriteKeyFile(const std::string& path) const;

  // 16 hex digits identifying the key: the first 8 bytes of
  // SHA-256("keyward raw-aes key id v1" || key).  Not secret.
  const std::string& key_id() const { return key_id_; }

  absl::StatusOr<GeneratedDataKey> GenerateDataKey(
      const EncryptionContext& context) const override;
  absl::StatusOr<WrappedDataKey> WrapDataKey(
      const SecretData& data_key,
      const EncryptionContext& context) const override;
  absl::StatusOr<SecretData> UnwrapDataKey(
      const EncryptedDataKey& encrypted,
      const EncryptionContext& context) const override;
  bool Owns(const EncryptedDataKey& encrypted) const override;

  ~RawAesKeyring() override;

 private:
  RawAesKeyring(SecretData key, std::string key_id,
                std::unique_ptr<crypto::Aead> aead);
  KeyReference Reference() const;

  const SecretData key_;
  const std::string key_id_;
  const std::unique_ptr<crypto::Aead> aead_;
};

}  // namespace keyward

#endif  // KEYWARD_RAW_AES_KEYRING_H_
