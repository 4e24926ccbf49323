#include "kms/kms_keyring.h"

#include "absl/strings/str_cat.h"
#include "format/kms_entries.h"
#include "base/status_macros.h"
#include "keyward/errors.h"
#include "kms/data_key_blob.h"
#include "kms/key_service.h"

namespace keyward::kms {

absl::Status CheckKmsEntriesBoundToHeaderKey(const format::Header& header) {
  return format::CheckKmsEntriesBoundTo(header, header.key.key_name);
}

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
  if (!key_name_.empty()) {
    // The provider info is a hint; the blob says which key wrapped it.
    KW_ASSIGN_OR_RETURN(DataKeyBlob blob, DecodeBlob(encrypted.ciphertext));
    if (blob.key_name != key_name_) return absl::NotFoundError("not a kms entry of this key");
  }
  return service_->DecryptDataKey(encrypted.ciphertext, context, reader_);
}

bool LocalKmsKeyring::Owns(const EncryptedDataKey& encrypted) const {
  return encrypted.provider_id == kKmsProviderId &&
         (key_name_.empty() || encrypted.provider_info == key_name_);
}

}  // namespace keyward::kms
