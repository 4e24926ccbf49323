// Keyrings wrap and unwrap the data keys (DEKs) that protect Keyward
// messages.  A message carries one wrapped copy of its DEK per keyring it was
// encrypted for, so it can be opened through the KMS and, for example,
// through an offline disaster-recovery key as well.
//
// Implementations: RawAesKeyring (keyward/raw_aes_keyring.h, a local key
// file, for tests and offline use), KmsKeyring (keyward/kms_keyring.h) and
// CachingUnwrapper (keyward/caching_unwrapper.h), which remembers what
// another unwrapper opened.
#ifndef KEYWARD_KEYRING_H_
#define KEYWARD_KEYRING_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "keyward/secret_data.h"

namespace keyward {

// Authenticated, non-secret key/value pairs bound to a message and to its
// wrapped data keys (for example {"tenant": "acme", "table": "cards"}).  The
// same pairs must be presented to decrypt.  Values are stored in the clear in
// every message: never put secrets in an encryption context.  Keys and values
// are UTF-8; std::map keeps them in the byte order the format requires.
using EncryptionContext = std::map<std::string, std::string>;

// The reserved encryption context key that names a tenant.  A data key
// whose context holds it (with a non-empty value) is also sealed under that
// tenant's own key inside keywardd, so that erasing the tenant
// (AdminClient::EraseTenant) makes every such data key undecryptable for
// good while other tenants are untouched (docs/security.md).  Such data keys
// are decrypted only with the same value in the context.
inline constexpr char kTenantContextKey[] = "keyward:tenant";

// Which key protects a message: environment ("dev", "production", or
// "offline" for raw keys), key name ("payments/card-numbers") and version.
struct KeyReference {
  std::string environment;
  std::string key_name;
  uint32_t key_version = 0;
};

// One wrapped copy of a data key, as stored in a message header.
struct EncryptedDataKey {
  std::string provider_id;    // "kms", "raw-aes"
  std::string provider_info;  // which key of that provider, e.g. a key id
  std::string ciphertext;     // the wrapped data key
};

struct GeneratedDataKey {
  SecretData plaintext;  // 32 bytes
  EncryptedDataKey encrypted;
  KeyReference key;
};

struct WrappedDataKey {
  EncryptedDataKey encrypted;
  KeyReference key;
};

// The provider ids of the wrapped data keys Keyward writes (the header's
// EncryptedDataKey::provider_id).
inline constexpr char kKmsProviderId[] = "kms";
inline constexpr char kRawAesProviderId[] = "raw-aes";

// The two roles a key can play for messages.  Thread-safety:
// implementations must be safe for concurrent use.
//
// Unwrapping: opens the wrapped data keys this unwrapper owns.
class KeyUnwrapper {
 public:
  virtual ~KeyUnwrapper() = default;

  // Unwraps `encrypted`.  Errors: kNotFound when the entry does not belong
  // to this unwrapper (another provider or key), so the caller tries the
  // next; any other code when it does belong but cannot be unwrapped (wrong
  // context, tampered, key disabled, server unreachable...).
  [[nodiscard]] virtual absl::StatusOr<SecretData> UnwrapDataKey(
      const EncryptedDataKey& encrypted, const EncryptionContext& context) const = 0;

  // True when `encrypted` was wrapped by this key, any version (same
  // provider and same key).  Rewrap uses it to replace a key's old entries
  // and keep everybody else's.
  virtual bool Owns(const EncryptedDataKey& encrypted) const = 0;
};

// Wrapping: makes data keys (the first wrapper of a message) or wraps an
// existing one for another recipient.
class KeyWrapper {
 public:
  virtual ~KeyWrapper() = default;

  // A fresh 32-byte data key bound to `context`, with its wrapped form and
  // the key reference it was wrapped under.
  [[nodiscard]] virtual absl::StatusOr<GeneratedDataKey> GenerateDataKey(
      const EncryptionContext& context) const = 0;

  // Wraps an existing data key (an additional recipient, or the target of a
  // rewrap).  A wrapper that never sees data keys (the KMS) refuses with
  // kFailedPrecondition.
  [[nodiscard]] virtual absl::StatusOr<WrappedDataKey> WrapDataKey(
      const SecretData& data_key, const EncryptionContext& context) const = 0;

  virtual bool Owns(const EncryptedDataKey& encrypted) const = 0;
};

// A key that plays both roles (a raw AES key, the KMS through a client).
class Keyring : public KeyWrapper, public KeyUnwrapper {
 public:
  bool Owns(const EncryptedDataKey& encrypted) const override = 0;
};

}  // namespace keyward

#endif  // KEYWARD_KEYRING_H_
