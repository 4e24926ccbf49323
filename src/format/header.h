// The message header of format v1: its in-memory form, its canonical
// serialization and a bounded, streaming parser.  docs/format.md is the
// normative description; keep the two in step.
#ifndef KEYWARD_FORMAT_HEADER_H_
#define KEYWARD_FORMAT_HEADER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "keyward/io.h"
#include "keyward/keyring.h"
#include "keyward/message.h"

namespace keyward::format {

inline constexpr absl::string_view kMagic = "KWRD";
inline constexpr uint8_t kFormatVersion = 1;
inline constexpr size_t kMessageIdSize = 32;
inline constexpr size_t kCommitmentSize = 32;
inline constexpr size_t kHeaderTagSize = 16;
inline constexpr uint8_t kRegularFrame = 0x00;
inline constexpr uint8_t kFinalFrame = 0x01;

struct Header {
  Suite suite = Suite::kAes256GcmHkdfSha256Commit;
  std::string message_id;  // kMessageIdSize bytes
  uint32_t frame_size = 0;
  KeyReference key;
  EncryptionContext context;
  std::vector<EncryptedDataKey> data_keys;
  std::string commitment;  // kCommitmentSize bytes
  std::string tag;         // kHeaderTagSize bytes
};

// True for the suites this build reads and writes.
bool IsKnownSuite(uint16_t suite_id);

// A signed suite's public key (the compressed point under
// kSigningKeyContextKey), or "" for an unsigned suite.  Errors
// (malformed-header): a signed suite without a valid key, or an unsigned
// one whose context carries a signing key.
absl::StatusOr<std::string> SigningKeyOf(Suite suite, const EncryptionContext& context);

// Validations shared by the writer, the parser and the keyrings.  Errors are
// kInvalidArgument with ErrorCode kMalformedHeader or kLimitExceeded, and name
// the field.
absl::Status ValidateEnvironment(absl::string_view environment);
absl::Status ValidateKeyName(absl::string_view key_name);
absl::Status ValidateContext(const EncryptionContext& context);
absl::Status ValidateFrameSize(uint32_t frame_size);

// The canonical encoding of an encryption context (entry count, then each
// key and value with 16-bit lengths, keys in byte order).  Wrapping AADs use
// it too.  REQUIRES: ValidateContext(context).ok().
std::string SerializeContext(const EncryptionContext& context);

// Every header byte from the magic through the commitment: what the header
// tag authenticates.  Validates every field first.
absl::StatusOr<std::string> SerializeAuthenticatedHeader(const Header& header);

// Reads one header from `in`, enforcing FormatLimits before allocating.
// `authenticated` receives the bytes from the magic through the commitment.
// Errors: kNotAKeywardMessage, kUnsupportedVersion, kUnsupportedSuite,
// kMalformedHeader (naming the field), kLimitExceeded, kTruncated; or the
// stream's own error.
absl::StatusOr<Header> ReadHeader(InputStream& in, std::string* authenticated);

// The same for a header at the front of `bytes` already in memory (what
// follows it is ignored), without the stream's per-field copies.
// `header_size`, when given, receives the header's full size (through the
// tag): the offset of the body.
absl::StatusOr<Header> ParseHeader(absl::string_view bytes, std::string* authenticated,
                                   size_t* header_size = nullptr);

}  // namespace keyward::format

#endif  // KEYWARD_FORMAT_HEADER_H_
