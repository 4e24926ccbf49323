// In-process keyring over a KeyService, for keywardd itself: the small
// payload Encrypt/Decrypt and server-side header rewrap.  Clients use the
// SDK's KMS keyring, which makes the same calls over gRPC.
#ifndef KEYWARD_KMS_KMS_KEYRING_H_
#define KEYWARD_KMS_KMS_KEYRING_H_

#include <string>

#include "absl/status/status.h"
#include "format/header.h"
#include "keyward/keyring.h"

namespace keyward::kms {

class KeyService;

// Every kms entry of `header` must be wrapped by the key the header names:
// the entry's provider info and the wrapped key's own binding (the key name
// inside the blob, authenticated when it is unwrapped) both name it.
// keywardd checks this before it authorizes or unwraps anything, so that
// the key it authorizes is the key it unwraps with, counts and audits.
// Errors: kInvalidArgument (malformed-header), with one message for every
// kind of mismatch that names only the header's key.
absl::Status CheckKmsEntriesBoundToHeaderKey(const format::Header& header);

class LocalKmsKeyring final : public Keyring {
 public:
  // `key_name` empty: a decrypt-only keyring that owns every kms entry
  // (only for callers that checked each entry's key themselves).  Otherwise
  // it owns, and unwraps, only entries wrapped by `key_name`.
  // `reader` false: its unwraps serve rewrapping (KeyService::DecryptDataKey).
  LocalKmsKeyring(KeyService* service, std::string key_name, bool reader = true)
      : service_(service), key_name_(std::move(key_name)), reader_(reader) {}

  absl::StatusOr<GeneratedDataKey> GenerateDataKey(
      const EncryptionContext& context) const override;
  absl::StatusOr<WrappedDataKey> WrapDataKey(
      const SecretData& data_key,
      const EncryptionContext& context) const override;
  absl::StatusOr<SecretData> UnwrapDataKey(
      const EncryptedDataKey& encrypted,
      const EncryptionContext& context) const override;
  bool Owns(const EncryptedDataKey& encrypted) const override;

 private:
  KeyService* const service_;
  const std::string key_name_;
  const bool reader_;
};

}  // namespace keyward::kms

#endif  // KEYWARD_KMS_KMS_KEYRING_H_
