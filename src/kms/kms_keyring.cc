#include "kms/kms_keyring.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keyward/errors.h"
#include "kms/data_key_blob.h"
#include "kms/key_service.h"

namespace keyward::kms {

absl::Status CheckKmsEntriesBoundToHeaderKey(const format::Header& header) {
  for (const EncryptedDataKey& edk : header.data_keys) {
    if (edk.provider_id != kKmsProviderId) continue;
    auto blob = DecodeBlob(edk.ciphertext);
    if (edk.provider_info != header.key.key_name || !blob.ok() ||
        blob->key_name != header.key.key_name) {
      return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kMalformedHeader,
                       absl::StrCat("the message's kms data key entry is not wrapped by key '",
                                    header.key.key_name,
                                    "', the key its header names; keywardd refuses it "
                                    "without unwrapping anything"));
    }
  }
  return absl::OkStatus();
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
