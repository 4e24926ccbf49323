// A message's header on the way out (PreparedHeader: materials to tagged
// bytes and message keys) and on the way in (OpenedHeader: checked, unlocked).
#ifndef KEYWARD_FORMAT_MESSAGE_HEADER_H_
#define KEYWARD_FORMAT_MESSAGE_HEADER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "crypto/internal/nonce_aead.h"
#include "crypto/signature.h"
#include "format/encrypt_materials.h"
#include "format/header.h"
#include "format/message_keys.h"
#include "keyward/io.h"
#include "keyward/keyring.h"
#include "keyward/message.h"
#include "keyward/secret_data.h"

namespace keyward::format {

// What a signed message's signature covers before its body (docs/format.md
// §7.1): everything but the key reference, the wrapped data keys and the
// header tag, which a rewrap changes.
std::string SignedPrefix(const Header& h);

// The header tag: the message key's AEAD over `authenticated` (sequence 0,
// empty plaintext).
absl::StatusOr<std::string> ComputeHeaderTag(const crypto::internal::NonceAead& aead,
                                             absl::string_view authenticated);

struct PreparedHeader {
  std::string bytes;  // authenticated part followed by the tag
  MessageKeys keys;
  uint32_t frame_size = 0;
  crypto::EcdsaP384Signer* signer = nullptr;  // signed suites
};

// Validates `m`, derives the message keys and serializes and tags the
// header; a signed suite's signer is fed the signed prefix.
// `size`: the message's body, for the choice of AES-GCM code.
absl::StatusOr<PreparedHeader> PrepareHeader(const EncryptionMaterials& m,
                                             MessageSize size = MessageSize::kLarge);

// Asks the keyrings for a data key: keyrings[0] generates it, the others
// add wrapped copies.  `data_key` receives the plaintext data key.
absl::StatusOr<EncryptionMaterials> MaterialsFromKeyrings(
    const EncryptionContext& caller_context, absl::Span<const KeyWrapper* const> keyrings,
    const EncryptOptions& options, SecretData* data_key,
    std::unique_ptr<crypto::EcdsaP384Signer>* signer);

struct OpenedHeader {
  Header header;
  std::string authenticated;
  SecretData data_key;
  MessageKeys keys;
  // Signed suites: fed the signed prefix, then every frame.
  std::unique_ptr<crypto::EcdsaP384Verifier> verifier;
};

// Checks `h` against the reader's expected environment and context pairs.
// Errors: kFailedPrecondition (environment-mismatch, context-mismatch).
absl::Status CheckExpectations(const Header& h, const DecryptOptions& options);

// Reads a header from `in`, checks it against `options` and unlocks its
// data key with one of `keyrings`.
absl::StatusOr<OpenedHeader> OpenHeader(InputStream& in,
                                        absl::Span<const KeyUnwrapper* const> keyrings,
                                        const DecryptOptions& options);

// The same for a header at the front of bytes in memory; `header_size`
// receives the offset of the body.
absl::StatusOr<OpenedHeader> OpenHeader(absl::string_view bytes,
                                        absl::Span<const KeyUnwrapper* const> keyrings,
                                        const DecryptOptions& options,
                                        size_t* header_size = nullptr);

}  // namespace keyward::format

#endif  // KEYWARD_FORMAT_MESSAGE_HEADER_H_
