// Lower-level encryption entry point for code that already holds a data key
// and its wrapped copies: the SDK's data key cache (one data key, many
// messages) and the frozen test vector generator (fixed message ids).
// Application code uses keyward/message.h.
#ifndef KEYWARD_FORMAT_ENCRYPT_MATERIALS_H_
#define KEYWARD_FORMAT_ENCRYPT_MATERIALS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "crypto/signature.h"
#include "keyward/io.h"
#include "keyward/keyring.h"
#include "keyward/message.h"
#include "keyward/secret_data.h"

namespace keyward::format {

struct EncryptionMaterials {
  Suite suite = Suite::kAes256GcmHkdfSha256Commit;
  uint32_t frame_size = kDefaultFrameSize;
  // Empty: a fresh random 32-byte id (always, outside test vectors).
  std::string message_id;
  KeyReference key;
  EncryptionContext context;
  std::vector<EncryptedDataKey> data_keys;
  const SecretData* data_key = nullptr;  // 32 bytes, not owned
  // Signed suites: the message's signer, whose public key `context` carries
  // under kSigningKeyContextKey.  Not owned; used up by one message.
  crypto::EcdsaP384Signer* signer = nullptr;
};

// Writes one message.  Errors: kInvalidArgument / kLimitExceeded for invalid
// materials; stream errors.
[[nodiscard]] absl::Status EncryptWithMaterials(
    const EncryptionMaterials& materials, InputStream& in, OutputStream& out);

// The same for a plaintext in memory, sealing frames straight into the
// returned message.  Produces exactly the bytes EncryptWithMaterials would.
[[nodiscard]] absl::StatusOr<std::string> EncryptBytesWithMaterials(
    const EncryptionMaterials& materials, absl::string_view plaintext);

}  // namespace keyward::format

#endif  // KEYWARD_FORMAT_ENCRYPT_MATERIALS_H_
