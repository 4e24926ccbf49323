// The Keyward message format v1 (docs/format.md): encrypt and decrypt bytes
// and streams, rewrap headers, inspect messages without keys.
//
// A message is a header (suite, 256-bit message id, key reference,
// encryption context, one or more wrapped data keys, a key commitment and a
// header tag) followed by a framed body.  Each frame is authenticated with
// its sequence number and a final-frame flag, so truncation, reordering,
// duplication and appended data are detected.  Decryption never releases a
// frame's plaintext before that frame has been verified.
//
// Every function is thread-safe as long as the keyrings are (they are
// required to be).  Errors carry a keyward::ErrorCode (keyward/errors.h).
#ifndef KEYWARD_MESSAGE_H_
#define KEYWARD_MESSAGE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "keyward/io.h"
#include "keyward/keyring.h"
#include "keyward/secret_data.h"

namespace keyward {

// Algorithm suites.  Each derives a per-message key and a 256-bit key
// commitment from the data key with HKDF-SHA-256 (docs/decisions/0008).
enum class Suite : uint16_t {
  kAes256GcmHkdfSha256Commit = 0x0001,         // the default
  kChaCha20Poly1305HkdfSha256Commit = 0x0002,  // CPUs without AES instructions
  // As 0x0001, and signed by its writer with a per-message ECDSA P-384 key
  // whose public half is in the encryption context (and so bound into the
  // wrapped data key): readers who can decrypt cannot forge messages
  // (docs/decisions/0017).  Signed suites are numbered 0x01xx (0x0003 is
  // the frozen example of an unknown suite).
  kAes256GcmHkdfSha256CommitEcdsaP384 = 0x0101,
};

// "AES-256-GCM-HKDF-SHA256-COMMIT", "CHACHA20-POLY1305-HKDF-SHA256-COMMIT",
// "AES-256-GCM-HKDF-SHA256-COMMIT-ECDSA-P384".
absl::string_view SuiteName(Suite suite);

// True for the suites whose messages are signed.
inline bool IsSignedSuite(Suite suite) {
  return suite == Suite::kAes256GcmHkdfSha256CommitEcdsaP384;
}

// The encryption context key that carries a signed message's public key
// (base64 of the compressed P-384 point).  Added by the library; a caller's
// context may not use it.
inline constexpr char kSigningKeyContextKey[] = "keyward-signing-key";

// Limits every reader enforces before allocating (docs/format.md#limits).
struct FormatLimits {
  static constexpr uint32_t kMinFrameSize = 64;
  static constexpr uint32_t kMaxFrameSize = 16 << 20;
  static constexpr size_t kMaxHeaderSize = 64 << 10;
  static constexpr size_t kMaxEnvironmentSize = 32;
  static constexpr size_t kMaxKeyNameSize = 256;
  static constexpr size_t kMaxContextEntries = 64;
  static constexpr size_t kMaxContextKeySize = 256;
  static constexpr size_t kMaxContextValueSize = 4096;
  static constexpr size_t kMaxDataKeys = 16;
  static constexpr size_t kMaxProviderIdSize = 32;
  static constexpr size_t kMaxProviderInfoSize = 1024;
  static constexpr size_t kMaxWrappedKeySize = 1024;
  static constexpr uint64_t kMaxFrames = (uint64_t{1} << 32) - 1;
  static constexpr size_t kMaxSignatureSize = 104;  // DER ECDSA P-384
};

// 64 KiB: the smallest frame at which streaming throughput reaches its
// plateau on the reference machine (docs/benchmarks.md, frame size sweep).
inline constexpr uint32_t kDefaultFrameSize = 64 << 10;

struct EncryptOptions {
  Suite suite = Suite::kAes256GcmHkdfSha256Commit;
  uint32_t frame_size = kDefaultFrameSize;
};

struct DecryptOptions {
  // Every pair here must be present, with the same value, in the message's
  // encryption context; otherwise kContextMismatch before any key is used.
  EncryptionContext expected_context;
  // When set, a message of another environment fails with
  // kEnvironmentMismatch naming both.
  std::string expected_environment;
  // Frames larger than this are refused (kLimitExceeded) before allocation.
  uint32_t max_frame_size = FormatLimits::kMaxFrameSize;
  // Refuse messages that are not signed (kUnsupportedSuite), so that no
  // one who can decrypt can hand this reader a message of their own making.
  bool require_signed = false;
};

// Encrypts `plaintext`.  keyrings[0] generates the data key and names the
// key reference; every further keyring adds a wrapped copy of the same data
// key.  Errors: kInvalidArgument for no keyrings, bad options or an invalid
// context; whatever a keyring returns.
[[nodiscard]] absl::StatusOr<std::string> EncryptMessage(
    absl::string_view plaintext, const EncryptionContext& context,
    absl::Span<const KeyWrapper* const> keyrings,
    const EncryptOptions& options = {});

// Decrypts a whole message held in memory.  Nothing is returned unless the
// header and every frame verified and the message ended exactly after its
// final frame.
[[nodiscard]] absl::StatusOr<SecretData> DecryptMessage(
    absl::string_view message, absl::Span<const KeyUnwrapper* const> keyrings,
    const DecryptOptions& options = {});

// Streaming forms.  Memory stays bounded by the frame size whatever the
// message size.  EncryptStream writes the header, then one frame per
// frame_size bytes of input.  DecryptStream writes each frame's plaintext
// only after that frame verified; on error, what was written before is
// verified plaintext of a message that did not complete, so callers writing
// files must write to a temporary name and rename only on success.
[[nodiscard]] absl::Status EncryptStream(
    InputStream& in, OutputStream& out, const EncryptionContext& context,
    absl::Span<const KeyWrapper* const> keyrings,
    const EncryptOptions& options = {});
[[nodiscard]] absl::Status DecryptStream(
    InputStream& in, OutputStream& out,
    absl::Span<const KeyUnwrapper* const> keyrings,
    const DecryptOptions& options = {});

// Replaces the wrapped data keys of a message: the data key is unwrapped
// with any of `from`, checked against the commitment and the header tag, and
// wrapped again with every keyring of `to` (to[0] names the new key
// reference).  Entries owned by a keyring of `from` or `to` (Keyring::Owns)
// are replaced; all other entries (a disaster-recovery key, say) are kept.
// The body is copied byte for byte, unread and untouched.
// Errors: as DecryptMessage for the header; whatever the keyrings return.
[[nodiscard]] absl::StatusOr<std::string> RewrapMessage(
    absl::string_view message, absl::Span<const KeyUnwrapper* const> from,
    absl::Span<const KeyWrapper* const> to, const DecryptOptions& options = {});
[[nodiscard]] absl::Status RewrapStream(InputStream& in, OutputStream& out,
                                        absl::Span<const KeyUnwrapper* const> from,
                                        absl::Span<const KeyWrapper* const> to,
                                        const DecryptOptions& options = {});

// RewrapMessage, then a check before the result is returned that it opens
// through `verify_with`: an entry unwraps to the same data key, and the new
// header's commitment and tag check (with the message keys already derived
// for the rewrap, so the check costs one unwrap and no key derivation).
// Errors: as RewrapMessage; kInternal naming what did not verify.
[[nodiscard]] absl::StatusOr<std::string> RewrapMessageVerified(
    absl::string_view message, absl::Span<const KeyUnwrapper* const> from,
    absl::Span<const KeyWrapper* const> to, absl::Span<const KeyUnwrapper* const> verify_with,
    const DecryptOptions& options = {});

// Checks that a message (or just its header) opens with `keyrings`: a data
// key unwraps, matches the key commitment, and authenticates the header.
// The body is not read; frames depend only on the data key and message id,
// so a header that verifies opens the body it was written for.
[[nodiscard]] absl::Status VerifyHeader(absl::string_view message,
                                        absl::Span<const KeyUnwrapper* const> keyrings,
                                        const DecryptOptions& options = {});

// What Inspect reports, read without any key.
struct MessageInfo {
  uint8_t format_version = 0;
  Suite suite = Suite::kAes256GcmHkdfSha256Commit;
  std::string message_id;  // 32 raw bytes
  KeyReference key;
  EncryptionContext context;
  std::vector<EncryptedDataKey> data_keys;
  uint32_t frame_size = 0;
  uint64_t header_bytes = 0;
  uint64_t frames = 0;
  uint64_t plaintext_bytes = 0;  // from the frame lengths, not decrypted
  uint64_t total_bytes = 0;
  uint64_t signature_bytes = 0;  // signed suites: the footer's signature
};

// Parses the header and walks the frame structure (type bytes and lengths)
// without decrypting.  Errors: the header errors of DecryptMessage, and
// kTruncated, kMalformedFrame or kTrailingData for a body whose structure
// is broken.  Authentication is not checked: a message that inspects cleanly
// can still fail to decrypt.
[[nodiscard]] absl::StatusOr<MessageInfo> InspectStream(InputStream& in);
[[nodiscard]] absl::StatusOr<MessageInfo> InspectMessage(
    absl::string_view message);

}  // namespace keyward

#endif  // KEYWARD_MESSAGE_H_
