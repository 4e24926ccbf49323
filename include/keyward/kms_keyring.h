// KmsKeyring: data keys from keywardd through a DataClient.  Encrypting
// calls GenerateDataKey; decrypting calls DecryptDataKey.  A data key is
// never sent to keywardd, so this keyring cannot wrap an existing one: put
// it first in a list of wrappers (other keyrings, a disaster-recovery raw
// key say, add copies).
//
// Thread-safe.  For caching and a simpler API, use keyward::Encryptor.
#ifndef KEYWARD_KMS_KEYRING_H_
#define KEYWARD_KMS_KEYRING_H_

#include <memory>
#include <string>

#include "keyward/data_client.h"
#include "keyward/keyring.h"

namespace keyward {

class KmsKeyring final : public Keyring {
 public:
  static constexpr const char* kProviderId = kKmsProviderId;

  // `key_name` empty: an unwrap-only keyring that accepts every kms entry
  // (any key the caller may read).  `client` must not be null.
  KmsKeyring(std::shared_ptr<DataClient> client, std::string key_name)
      : client_(std::move(client)), key_name_(std::move(key_name)) {}

  absl::StatusOr<GeneratedDataKey> GenerateDataKey(
      const EncryptionContext& context) const override;
  absl::StatusOr<WrappedDataKey> WrapDataKey(
      const SecretData& data_key, const EncryptionContext& context) const override;
  absl::StatusOr<SecretData> UnwrapDataKey(
      const EncryptedDataKey& encrypted,
      const EncryptionContext& context) const override;
  bool Owns(const EncryptedDataKey& encrypted) const override;

 private:
  const std::shared_ptr<DataClient> client_;
  const std::string key_name_;
};

}  // namespace keyward

#endif  // KEYWARD_KMS_KEYRING_H_
