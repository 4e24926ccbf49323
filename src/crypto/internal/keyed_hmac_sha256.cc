#include "crypto/internal/keyed_hmac_sha256.h"

#include <openssl/crypto.h>
#include <sodium/core.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "crypto/hmac.h"

namespace keyward::crypto::internal {

// libsodium rather than a duplicated OpenSSL EVP_MAC_CTX: copying the keyed
// state is a 208-byte memcpy, where EVP_MAC_CTX_dup allocates, and that
// dominated for index-sized inputs (docs/decisions/0024).
absl::StatusOr<std::unique_ptr<KeyedHmacSha256>> KeyedHmacSha256::New(
    const SecretData& key) {
  if (key.size() < kHmacMinKeySize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HMAC-SHA-256 keys must be at least ", kHmacMinKeySize, " bytes, got ",
        key.size()));
  }
  static const bool sodium_ready = sodium_init() >= 0;
  if (!sodium_ready) return absl::InternalError("libsodium failed to initialise");
  crypto_auth_hmacsha256_state keyed;
  crypto_auth_hmacsha256_init(&keyed, key.data(), key.size());
  SecretData state = SecretData::CopyFrom(
      absl::string_view(reinterpret_cast<const char*>(&keyed), sizeof(keyed)));
  OPENSSL_cleanse(&keyed, sizeof(keyed));
  return std::unique_ptr<KeyedHmacSha256>(new KeyedHmacSha256(std::move(state)));
}

KeyedHmacSha256::~KeyedHmacSha256() = default;  // SecretData wipes the state

KeyedHmacSha256::Computation::Computation(const KeyedHmacSha256& mac) {
  std::memcpy(&state_, mac.state_.data(), sizeof(state_));
}

KeyedHmacSha256::Computation::~Computation() {
  OPENSSL_cleanse(&state_, sizeof(state_));
}

void KeyedHmacSha256::Computation::Update(absl::string_view data) {
  crypto_auth_hmacsha256_update(&state_, reinterpret_cast<const unsigned char*>(data.data()),
                                data.size());
}

HmacSha256Tag KeyedHmacSha256::Computation::Final() {
  HmacSha256Tag tag;
  crypto_auth_hmacsha256_final(&state_, tag.data());
  return tag;
}

HmacSha256Tag KeyedHmacSha256::Mac(absl::string_view data) const {
  Computation c = Start();
  c.Update(data);
  return c.Final();
}

bool KeyedHmacSha256::Verify(absl::string_view tag, absl::string_view data) const {
  if (tag.size() < kHmacMinTagSize || tag.size() > kKeyedHmacSha256Size) return false;
  HmacSha256Tag expected = Mac(data);
  const bool equal = CRYPTO_memcmp(expected.data(), tag.data(), tag.size()) == 0;
  OPENSSL_cleanse(expected.data(), expected.size());
  return equal;
}

}  // namespace keyward::crypto::internal
