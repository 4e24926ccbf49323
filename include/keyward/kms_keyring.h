// KmsKeyring: data keys from keywardd.  Encrypting calls GenerateDataKey;
// decrypting calls DecryptDataKey.  A data key is never sent to keywardd,
// so this keyring cannot wrap an existing one: put it first in a keyring
// list (other keyrings, a disaster-recovery raw key say, add copies).
//
// Thread-safe.  For caching and a simpler API, use keyward::Encryptor.
#ifndef KEYWARD_KMS_KEYRING_H_
#define KEYWARD_KMS_KEYRING_H_

#include <string>

#include "keyward/client.h"
#include "keyward/keyring.h"

namespace keyward {

class KmsKeyring final : public Keyring {
 public:
  static constexpr char kProviderId[] = "kms";

  // `client` must outlive the keyring.  `key_name` empty: a decrypt-only
  // keyring that accepts every kms entry.
  KmsKeyring(Client* client, std::string key_name)
      : client_(client), key_name_(std::move(key_name)) {}

  absl::StatusOr<GeneratedDataKey> GenerateDataKey(
      const EncryptionContext& context) const override;
  absl::StatusOr<WrappedDataKey> WrapDataKey(
      const SecretData& data_key, const EncryptionContext& context) const override;
  absl::StatusOr<SecretData> UnwrapDataKey(
      const EncryptedDataKey& encrypted,
      const EncryptionContext& context) const override;
  bool Owns(const EncryptedDataKey& encrypted) const override;

 private:
  Client* const client_;
  const std::string key_name_;
};

}  // namespace keyward

#endif  // KEYWARD_KMS_KEYRING_H_
