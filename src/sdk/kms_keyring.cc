#include "keyward/kms_keyring.h"

#include "absl/strings/str_cat.h"
#include "format/kms_entries.h"

namespace keyward {

absl::StatusOr<GeneratedDataKey> KmsKeyring::GenerateDataKey(
    const EncryptionContext& context) const {
  if (key_name_.empty()) {
    return absl::FailedPreconditionError(
        "this KMS keyring only unwraps (it was made without a key name)");
  }
  return client_->GenerateDataKey(key_name_, context);
}

absl::StatusOr<WrappedDataKey> KmsKeyring::WrapDataKey(
    const SecretData&, const EncryptionContext&) const {
  return absl::FailedPreconditionError(
      "a data key is never sent to keywardd, so the KMS keyring cannot wrap an "
      "existing one; put the KMS keyring first in the list");
}

absl::StatusOr<SecretData> KmsKeyring::UnwrapDataKey(
    const EncryptedDataKey& encrypted, const EncryptionContext& context) const {
  if (!Owns(encrypted)) return absl::NotFoundError("not a kms entry of this keyring");
  // keywardd unwraps with the key the blob names; a keyring bound to a key
  // owns only blobs of that key, whatever the entry's label says.
  if (!key_name_.empty()) {
    auto blob_key = format::KmsBlobKeyName(encrypted.ciphertext);
    if (!blob_key.ok() || *blob_key != key_name_) {
      return absl::NotFoundError("a kms entry labelled with this key but wrapped by another");
    }
  }
  return client_->DecryptDataKey(encrypted.ciphertext, context);
}

bool KmsKeyring::Owns(const EncryptedDataKey& encrypted) const {
  return encrypted.provider_id == kProviderId &&
         (key_name_.empty() || encrypted.provider_info == key_name_);
}

}  // namespace keyward
