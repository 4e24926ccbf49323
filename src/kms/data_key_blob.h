// The wrapped data key that keywardd hands out: the `kms` provider's entry in
// a message header, and what DecryptDataKey takes back.  Self-describing so
// that any replica can unwrap it:
//
//   u8     blob version: 1, or 2 for a tenant's data key
//   str8   environment
//   str16  key name
//   u32    key version
//   8      context digest: SHA-256(canonical encryption context)[0:8]
//   60/88  sealed data key (version 1 / 2)
//
// The seal is made with the key version's KEK (in memory or in the HSM) and
// associated data "keyward kms data key v1" || every byte before the sealed
// part (the version byte included) || canonical context, so the blob cannot
// be moved to another key, version or environment, or used with another
// context.  The digest only lets keywardd say "context mismatch" instead of
// "authentication failed".
//
//   version 1: sealed = KEK-seal(data key (32))
//              = nonce(12) || ciphertext(32) || tag(16)               60 bytes
//   version 2: sealed = KEK-seal(inner (60))
//              = nonce(12) || ciphertext(60) || tag(16)               88 bytes
//              inner = AES-256-GCM under the tenant key of the data key,
//              random nonce, associated data "keyward tenant data key v1"
//              || every byte before the sealed part || canonical context
//              = nonce(12) || ciphertext(32) || tag(16)
//
// Version 2 is used exactly when the encryption context holds
// kTenantContextKey (keyward/keyring.h): the tenant key belongs to (key name,
// tenant), lives only sealed by the HSM root key in the key store, and
// erasing it (KeyService::EraseTenant) makes every version-2 blob of that
// tenant undecryptable although the KEK still exists (docs/decisions/0021).
#ifndef KEYWARD_KMS_DATA_KEY_BLOB_H_
#define KEYWARD_KMS_DATA_KEY_BLOB_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "keyward/keyring.h"

namespace keyward::kms {

inline constexpr uint8_t kBlobVersion = 1;        // no tenant layer
inline constexpr uint8_t kTenantBlobVersion = 2;  // with a tenant layer
inline constexpr size_t kContextDigestSize = 8;
// A sealed 32-byte data key: nonce || ciphertext || tag.
inline constexpr size_t kSealedDataKeySize = 12 + 32 + 16;
// The KEK's seal of a tenant-sealed data key (kSealedDataKeySize bytes).
inline constexpr size_t kTenantSealedDataKeySize = 12 + kSealedDataKeySize + 16;

// The sealed part's size in a blob of `version` (1 or 2); 0 for others.
constexpr size_t SealedSizeFor(uint8_t version) {
  return version == kBlobVersion         ? kSealedDataKeySize
         : version == kTenantBlobVersion ? kTenantSealedDataKeySize
                                         : 0;
}

struct DataKeyBlob {
  std::string environment;
  std::string key_name;
  uint32_t key_version = 0;
  std::string context_digest;  // kContextDigestSize bytes
  std::string sealed;          // SealedSizeFor(version) bytes
  uint8_t version = kBlobVersion;
};

std::string ContextDigest(const EncryptionContext& context);

// Every byte before the sealed part.
std::string EncodeBlobHeader(const DataKeyBlob& blob);
std::string EncodeBlob(const DataKeyBlob& blob);
// Accepts versions 1 and 2.  Errors: kInvalidArgument (ErrorCode
// kMalformedHeader) naming the problem.
absl::StatusOr<DataKeyBlob> DecodeBlob(absl::string_view bytes);

// The associated data the KEK seals with (both versions).
std::string DataKeyAad(const DataKeyBlob& blob, const EncryptionContext& context);
// The same from an already serialized context (format::SerializeContext).
std::string DataKeyAadSerialized(const DataKeyBlob& blob,
                                 absl::string_view serialized_context);
// The associated data of a version-2 blob's inner seal under the tenant key.
std::string TenantDataKeyAadSerialized(const DataKeyBlob& blob,
                                       absl::string_view serialized_context);
// ContextDigest of an already serialized context.
std::string ContextDigestSerialized(absl::string_view serialized_context);

// The associated data a key version's KEK is sealed with under the HSM root
// key: "keyward kek v1|<environment>|<key name>|<version>".  Stored KEKs
// depend on it byte for byte (frozen in tests/vectors/kms_v1).
std::string KekAad(absl::string_view environment, absl::string_view key_name,
                   uint32_t version);

// The associated data a tenant key is sealed with under the HSM root key:
// "keyward tenant key v1|<environment>|<key name>|<tenant>".  Unambiguous:
// neither an environment nor a key name may hold '|', and the tenant comes
// last.  Frozen in tests/vectors/kms_v1.
std::string TenantKeyAad(absl::string_view environment, absl::string_view key_name,
                         absl::string_view tenant);

}  // namespace keyward::kms

#endif  // KEYWARD_KMS_DATA_KEY_BLOB_H_
