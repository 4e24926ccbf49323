// Per-message key schedule of format v1 (docs/format.md#key-schedule):
//   okm = HKDF-Expand-SHA-256(PRK = data key,
//                             info = "keyward message v1" || suite id || message id,
//                             L = 64)
//   message key = okm[0:32], key commitment = okm[32:64]
// and the nonces and associated data of the header tag and of each frame.
#ifndef KEYWARD_FORMAT_MESSAGE_KEYS_H_
#define KEYWARD_FORMAT_MESSAGE_KEYS_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/hkdf.h"
#include "crypto/internal/nonce_aead.h"
#include "keyward/message.h"
#include "keyward/secret_data.h"

namespace keyward::format {

inline constexpr absl::string_view kKeyScheduleLabel = "keyward message v1";
inline constexpr size_t kDataKeySize = 32;

struct MessageKeys {
  std::unique_ptr<crypto::internal::NonceAead> aead;  // keyed with the message key
  std::string commitment;                            // 32 bytes
};

crypto::AeadAlgorithm SuiteAead(Suite suite);

// Which AES-256-GCM code a message key drives; the bytes are the same.
// OpenSSL's EVP for streams and large messages (its stitched AES-GCM is
// faster per byte); libsodium's for a message in memory whose body fits in
// kSmallMessageBody, where EVP's per-key setup costs more than the
// encryption (docs/decisions/0033).  Other suites always use EVP.
enum class MessageSize { kLarge, kSmall };
inline constexpr size_t kSmallMessageBody = 4 << 10;
inline MessageSize SizeOfBody(size_t body_bytes) {
  return body_bytes <= kSmallMessageBody ? MessageSize::kSmall : MessageSize::kLarge;
}

// What the key schedule needs from a data key alone: HKDF-Expand keyed
// with it once (crypto::HkdfSha256Expander), made once per data key where
// one data key serves many messages (the SDK's encrypt-side cache).
//
// Thread-safety: immutable after New; Derive is safe to call concurrently.
class DataKeySchedule {
 public:
  // Errors: kInvalidArgument for a data key that is not 32 bytes.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<DataKeySchedule>> New(
      const SecretData& data_key);

  // The message keys of message `message_id`: exactly what
  // DeriveMessageKeys(suite, data key, message_id) returns.
  absl::StatusOr<MessageKeys> Derive(Suite suite, absl::string_view message_id,
                                     MessageSize size = MessageSize::kLarge) const;

 private:
  explicit DataKeySchedule(std::unique_ptr<crypto::HkdfSha256Expander> expand)
      : expand_(std::move(expand)) {}
  const std::unique_ptr<crypto::HkdfSha256Expander> expand_;
};

// The same for a data key used once.  Errors: kInvalidArgument for a data
// key that is not 32 bytes.
absl::StatusOr<MessageKeys> DeriveMessageKeys(Suite suite,
                                              const SecretData& data_key,
                                              absl::string_view message_id,
                                              MessageSize size = MessageSize::kLarge);

// 12-byte nonce for sequence number `seq`: four zero bytes, then seq as a
// big-endian uint64.  Sequence 0 is the header tag; frames count from 1.
std::array<char, 12> SequenceNonce(uint64_t seq);

// 9 bytes of frame associated data: seq (big-endian uint64), then 0x01 for
// the final frame or 0x00 otherwise.
std::array<char, 9> FrameAad(uint64_t seq, bool final);

}  // namespace keyward::format

#endif  // KEYWARD_FORMAT_MESSAGE_KEYS_H_
