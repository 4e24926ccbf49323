// Small payloads (at most 64 KiB) encrypted and decrypted inside keywardd:
// a Keyward message whose data key is wrapped by one key.
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "format/header.h"
#include "keyward/errors.h"
#include "keyward/message.h"
#include "kms/key_service.h"
#include "kms/kms_keyring.h"

namespace keyward::kms {

absl::StatusOr<std::string> KeyService::Encrypt(absl::string_view name,
                                                absl::string_view plaintext,
                                                const EncryptionContext& context) {
  if (plaintext.size() > kMaxPayload) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     ErrorCode::kLimitExceeded,
                     absl::StrCat("Encrypt takes at most 64 KiB, got ",
                                  plaintext.size(), " bytes; encrypt larger "
                                  "data in the SDK with a data key"));
  }
  // Messages made here use the key's suite (a key for signed messages
  // gets signed ones).
  KW_ASSIGN_OR_RETURN(std::shared_ptr<const KeyCache::CachedKey> cached, cache_.Lookup(name));
  EncryptOptions options;
  options.suite = cached->key.suite;
  LocalKmsKeyring keyring(this, std::string(name));
  const KeyWrapper* keyrings[] = {&keyring};
  return EncryptMessage(plaintext, context, keyrings, options);
}

absl::StatusOr<SecretData> KeyService::Decrypt(absl::string_view key_name,
                                               absl::string_view message,
                                               const EncryptionContext& context) {
  if (message.size() > kMaxPayload + FormatLimits::kMaxHeaderSize + 4096) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     ErrorCode::kLimitExceeded,
                     "Decrypt takes messages of at most 64 KiB of plaintext; "
                     "decrypt larger ones in the SDK");
  }
  LocalKmsKeyring keyring(this, std::string(key_name));
  const KeyUnwrapper* keyrings[] = {&keyring};
  DecryptOptions options;
  options.expected_context = context;
  options.expected_environment = options_.environment;
  return DecryptMessage(message, keyrings, options);
}

}  // namespace keyward::kms
