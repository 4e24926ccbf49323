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
#include "format/message_keys.h"
#include "keyward/io.h"
#include "keyward/keyring.h"
#include "keyward/message.h"
#include "keyward/secret_data.h"

namespace keyward::format {

// The authenticated header that every message made from one set of
// materials shares, serialized and validated once, with the message id and
// key commitment left as zeros: kept beside a cached data key so that a
// message only fills in those two.  Unsigned suites only (a signed
// message's context, and so its header, is its own).
struct HeaderTemplate {
  std::string bytes;
  Suite suite = Suite::kAes256GcmHkdfSha256Commit;
  uint32_t frame_size = 0;
};

struct EncryptionMaterials {
  Suite suite = Suite::kAes256GcmHkdfSha256Commit;
  uint32_t frame_size = kDefaultFrameSize;
  // Empty: a fresh random 32-byte id (always, outside test vectors).
  std::string message_id;
  KeyReference key;
  EncryptionContext context;
  std::vector<EncryptedDataKey> data_keys;
  const SecretData* data_key = nullptr;  // 32 bytes, not owned
  // Optional: data_key's schedule, made once where one data key serves
  // many messages (else derived from data_key for this message).  Not owned.
  const DataKeySchedule* schedule = nullptr;
  // Optional: MakeHeaderTemplate of these same materials.  Not owned.
  const HeaderTemplate* header = nullptr;
  // Signed suites: the message's signer, whose public key `context` carries
  // under kSigningKeyContextKey.  Not owned; used up by one message.
  crypto::EcdsaP384Signer* signer = nullptr;
};

// The template of `materials`' headers.  Errors: kInvalidArgument for a
// signed suite; the header's own validation errors.
[[nodiscard]] absl::StatusOr<HeaderTemplate> MakeHeaderTemplate(
    const EncryptionMaterials& materials);

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
