#include "kms/kms_keyring.h"

#include "base/status_macros.h"
#include "kms/key_service.h"

namespace keyward::kms {

absl::StatusOr<GeneratedDataKey> LocalKmsKeyring::GenerateDataKey(
    const EncryptionContext& context) const {
  KW_ASSIGN_OR_RETURN(DataKey dk, service_->GenerateDataKey(key_name_, context));
  return GeneratedDataKey{std::move(dk.plaintext),
                          EncryptedDataKey{kKmsProviderId, key_name_,
                                           std::move(dk.wrapped)},
                          std::move(dk.key)};
}

absl::StatusOr<WrappedDataKey> LocalKmsKeyring::WrapDataKey(
    const SecretData& data_key, const EncryptionContext& context) const {
  KW_ASSIGN_OR_RETURN(WrappedKey w,
                      service_->WrapDataKey(key_name_, data_key, context));
  return WrappedDataKey{
      EncryptedDataKey{kKmsProviderId, key_name_, std::move(w.wrapped)},
      std::move(w.key)};
}

absl::StatusOr<SecretData> LocalKmsKeyring::UnwrapDataKey(
    const EncryptedDataKey& encrypted, const EncryptionContext& context) const {
  if (!Owns(encrypted)) return absl::NotFoundError("not a kms entry of this key");
  return service_->DecryptDataKey(encrypted.ciphertext, context, reader_);
}

bool LocalKmsKeyring::Owns(const EncryptedDataKey& encrypted) const {
  return encrypted.provider_id == kKmsProviderId &&
         (key_name_.empty() || encrypted.provider_info == key_name_);
}

}  // namespace keyward::kms
