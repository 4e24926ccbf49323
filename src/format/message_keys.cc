#include "format/message_keys.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "crypto/hkdf.h"
#include "format/wire.h"

namespace keyward::format {

crypto::AeadAlgorithm SuiteAead(Suite suite) {
  return suite == Suite::kChaCha20Poly1305HkdfSha256Commit
             ? crypto::AeadAlgorithm::kChaCha20Poly1305
             : crypto::AeadAlgorithm::kAes256Gcm;
}

absl::StatusOr<MessageKeys> DeriveMessageKeys(Suite suite,
                                              const SecretData& data_key,
                                              absl::string_view message_id) {
  if (data_key.size() != kDataKeySize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data keys are 32 bytes; the keyring returned ", data_key.size()));
  }
  std::string info(kKeyScheduleLabel.data(), kKeyScheduleLabel.size());
  AppendBigEndian(&info, static_cast<uint16_t>(suite), 2);
  info.append(message_id.data(), message_id.size());
  KW_ASSIGN_OR_RETURN(SecretData okm,
                      crypto::HkdfExpand(crypto::HashFunction::kSha256,
                                         data_key.AsStringView(), info, 64));
  MessageKeys keys;
  SecretData message_key = SecretData::CopyFrom(okm.span().subspan(0, 32));
  keys.commitment = std::string(okm.AsStringView().substr(32, 32));
  KW_ASSIGN_OR_RETURN(keys.aead, crypto::internal::NewNonceAead(
                                     SuiteAead(suite), message_key));
  return keys;
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
