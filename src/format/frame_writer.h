// Seals a message's body into frames (docs/format.md section 7), from a
// stream or from bytes in memory, and appends a signed suite's signature.
#ifndef KEYWARD_FORMAT_FRAME_WRITER_H_
#define KEYWARD_FORMAT_FRAME_WRITER_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "crypto/internal/nonce_aead.h"
#include "crypto/signature.h"
#include "keyward/io.h"

namespace keyward::format {

// Reads `in` to its end and writes its frames to `out`, each sealed with
// `aead`; `signer` (signed suites, else null) is fed every frame and its
// signature follows the final frame.
absl::Status WriteBody(InputStream& in, OutputStream& out,
                       const crypto::internal::NonceAead& aead, uint32_t frame_size,
                       crypto::EcdsaP384Signer* signer);

// Bytes form of WriteBody: seals each frame straight from `plaintext` into
// `out`, with no intermediate buffer.
absl::Status SealBody(absl::string_view plaintext, const crypto::internal::NonceAead& aead,
                      uint32_t frame_size, std::string* out,
                      crypto::EcdsaP384Signer* signer);

}  // namespace keyward::format

#endif  // KEYWARD_FORMAT_FRAME_WRITER_H_
