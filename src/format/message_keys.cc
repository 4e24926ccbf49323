#include "format/message_keys.h"

#include <openssl/crypto.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "format/wire.h"

namespace keyward::format {

crypto::AeadAlgorithm SuiteAead(Suite suite) {
  return suite == Suite::kChaCha20Poly1305HkdfSha256Commit
             ? crypto::AeadAlgorithm::kChaCha20Poly1305
             : crypto::AeadAlgorithm::kAes256Gcm;
}

namespace {

absl::Status CheckDataKey(const SecretData& data_key) {
  if (data_key.size() != kDataKeySize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data keys are 32 bytes; the keyring returned ", data_key.size()));
  }
  return absl::OkStatus();
}

std::string KeyScheduleInfo(Suite suite, absl::string_view message_id) {
  std::string info;
  info.reserve(kKeyScheduleLabel.size() + 2 + message_id.size());
  info.append(kKeyScheduleLabel.data(), kKeyScheduleLabel.size());
  AppendBigEndian(&info, static_cast<uint16_t>(suite), 2);
  info.append(message_id.data(), message_id.size());
  return info;
}

// The same into `buffer` (no allocation) when the id fits; returns the info.
absl::string_view KeyScheduleInfo(Suite suite, absl::string_view message_id,
                                  std::array<char, kKeyScheduleLabel.size() + 2 + 32>& buffer,
                                  std::string& fallback) {
  if (message_id.size() > 32) {
    fallback = KeyScheduleInfo(suite, message_id);
    return fallback;
  }
  std::memcpy(buffer.data(), kKeyScheduleLabel.data(), kKeyScheduleLabel.size());
  StoreBigEndian(reinterpret_cast<uint8_t*>(buffer.data()) + kKeyScheduleLabel.size(),
                 static_cast<uint16_t>(suite), 2);
  std::memcpy(buffer.data() + kKeyScheduleLabel.size() + 2, message_id.data(), message_id.size());
  return absl::string_view(buffer.data(), kKeyScheduleLabel.size() + 2 + message_id.size());
}

// okm[0:32] keys the message's AEAD, okm[32:64] is the commitment.  The
// caller wipes okm.
absl::StatusOr<MessageKeys> SplitOkm(Suite suite, absl::Span<const uint8_t> okm,
                                     MessageSize size) {
  MessageKeys keys;
  keys.commitment.assign(reinterpret_cast<const char*>(okm.data()) + 32, 32);
  const absl::Span<const uint8_t> message_key = okm.subspan(0, 32);
  if (size == MessageSize::kSmall && SuiteAead(suite) == crypto::AeadAlgorithm::kAes256Gcm) {
    KW_ASSIGN_OR_RETURN(keys.aead, crypto::internal::NewAesGcmForSmallRecords(message_key));
  } else {
    KW_ASSIGN_OR_RETURN(keys.aead, crypto::internal::NewNonceAead(
                                       SuiteAead(suite), SecretData::CopyFrom(message_key)));
  }
  return keys;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DataKeySchedule>> DataKeySchedule::New(
    const SecretData& data_key) {
  KW_RETURN_IF_ERROR(CheckDataKey(data_key));
  KW_ASSIGN_OR_RETURN(std::unique_ptr<crypto::HkdfSha256Expander> expand,
                      crypto::HkdfSha256Expander::New(data_key.AsStringView()));
  return std::unique_ptr<DataKeySchedule>(new DataKeySchedule(std::move(expand)));
}

absl::StatusOr<MessageKeys> DataKeySchedule::Derive(Suite suite, absl::string_view message_id,
                                                    MessageSize size) const {
  // On the stack and wiped here: a locked allocation per message costs
  // more than the rest of the schedule.
  uint8_t okm[64];
  std::array<char, kKeyScheduleLabel.size() + 2 + 32> info_buffer;
  std::string long_info;
  absl::Status expanded =
      expand_->Expand(KeyScheduleInfo(suite, message_id, info_buffer, long_info), okm);
  absl::StatusOr<MessageKeys> keys =
      expanded.ok() ? SplitOkm(suite, okm, size) : absl::StatusOr<MessageKeys>(expanded);
  OPENSSL_cleanse(okm, sizeof(okm));
  return keys;
}

absl::StatusOr<MessageKeys> DeriveMessageKeys(Suite suite,
                                              const SecretData& data_key,
                                              absl::string_view message_id,
                                              MessageSize size) {
  KW_RETURN_IF_ERROR(CheckDataKey(data_key));
  KW_ASSIGN_OR_RETURN(SecretData okm,
                      crypto::HkdfExpand(crypto::HashFunction::kSha256, data_key.AsStringView(),
                                         KeyScheduleInfo(suite, message_id), 64));
  return SplitOkm(suite, okm.span(), size);
}

std::array<char, 12> SequenceNonce(uint64_t seq) {
  std::array<char, 12> nonce{};
  StoreBigEndian(reinterpret_cast<uint8_t*>(nonce.data()) + 4, seq, 8);
  return nonce;
}

std::array<char, 9> FrameAad(uint64_t seq, bool final) {
  std::array<char, 9> aad{};
  StoreBigEndian(reinterpret_cast<uint8_t*>(aad.data()), seq, 8);
  aad[8] = final ? 1 : 0;
  return aad;
}

}  // namespace keyward::format
