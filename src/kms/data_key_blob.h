// The wrapped data key that keywardd hands out: the `kms` provider's entry in
// a message header, and what DecryptDataKey takes back.  Self-describing so
// that any replica can unwrap it:
//
//   u8     blob version (1)
//   str8   environment
//   str16  key name
//   u32    key version
//   8      context digest: SHA-256(canonical encryption context)[0:8]
//   60     sealed data key: nonce(12) || AES-256-GCM ciphertext(32) || tag(16)
//
// The seal is made with the key version's KEK (in memory or in the HSM) and
// associated data "keyward kms data key v1" || every byte before the sealed
// part || canonical context, so the blob cannot be moved to another key,
// version or environment, or used with another context.  The digest only
// lets keywardd say "context mismatch" instead of "authentication failed".
#ifndef KEYWARD_KMS_DATA_KEY_BLOB_H_
#define KEYWARD_KMS_DATA_KEY_BLOB_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "keyward/keyring.h"

namespace keyward::kms {

inline constexpr uint8_t kBlobVersion = 1;
inline constexpr size_t kContextDigestSize = 8;
inline constexpr size_t kSealedDataKeySize = 12 + 32 + 16;

struct DataKeyBlob {
  std::string environment;
  std::string key_name;
  uint32_t key_version = 0;
  std::string context_digest;  // kContextDigestSize bytes
  std::string sealed;          // kSealedDataKeySize bytes
};

std::string ContextDigest(const EncryptionContext& context);

// Every byte before the sealed part.
std::string EncodeBlobHeader(const DataKeyBlob& blob);
std::string EncodeBlob(const DataKeyBlob& blob);
// Errors: kInvalidArgument (ErrorCode kMalformedHeader) naming the problem.
absl::StatusOr<DataKeyBlob> DecodeBlob(absl::string_view bytes);

// The associated data the data key is sealed with.
std::string DataKeyAad(const DataKeyBlob& blob, const EncryptionContext& context);
// The same from an already serialized context (format::SerializeContext).
std::string DataKeyAadSerialized(const DataKeyBlob& blob,
                                 absl::string_view serialized_context);
// ContextDigest of an already serialized context.
std::string ContextDigestSerialized(absl::string_view serialized_context);

// The associated data a key version's KEK is sealed with under the HSM root
// key: "keyward kek v1|<environment>|<key name>|<version>".  Stored KEKs
// depend on it byte for byte (frozen in tests/vectors/kms_v1).
std::string KekAad(absl::string_view environment, absl::string_view key_name,
                   uint32_t version);

}  // namespace keyward::kms

#endif  // KEYWARD_KMS_DATA_KEY_BLOB_H_
