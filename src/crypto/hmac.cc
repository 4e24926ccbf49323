#include "crypto/hmac.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "absl/strings/str_cat.h"
#include "crypto/internal/openssl_util.h"

namespace keyward::crypto {

absl::StatusOr<std::unique_ptr<HmacSha256>> HmacSha256::New(
    const SecretData& key, size_t tag_size) {
  if (key.size() < kHmacMinKeySize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HMAC-SHA-256 keys must be at least ", kHmacMinKeySize,
        " bytes, got ", key.size()));
  }
  if (tag_size < kHmacMinTagSize || tag_size > kHmacSha256TagSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HMAC-SHA-256 tag size must be 16 to 32 bytes, got ", tag_size));
  }
  return std::unique_ptr<HmacSha256>(new HmacSha256(key.Clone(), tag_size));
}

absl::StatusOr<std::string> HmacSha256::ComputeMac(
    absl::string_view data) const {
  static EVP_MAC* mac = internal::FetchMac("HMAC");
  internal::MacCtxPtr ctx(EVP_MAC_CTX_new(mac));
  if (ctx == nullptr) return internal::OpenSslError("EVP_MAC_CTX_new");
  char digest[] = "SHA2-256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(ctx.get(), key_.data(), key_.size(), params) != 1 ||
      EVP_MAC_update(ctx.get(), internal::U8(data), data.size()) != 1) {
    return internal::OpenSslError("HMAC-SHA-256");
  }
  unsigned char full[kHmacSha256TagSize];
  size_t len = 0;
  if (EVP_MAC_final(ctx.get(), full, &len, sizeof(full)) != 1 ||
      len != kHmacSha256TagSize) {
    return internal::OpenSslError("HMAC-SHA-256 final");
  }
  return std::string(reinterpret_cast<const char*>(full), tag_size_);
}

absl::Status HmacSha256::VerifyMac(absl::string_view tag,
                                   absl::string_view data) const {
  auto expected = ComputeMac(data);
  if (!expected.ok()) return expected.status();
  if (!ConstantTimeEquals(*expected, tag)) {
    return absl::InvalidArgumentError(
        "MAC verification failed: the data or its tag was modified, or the "
        "key is wrong");
  }
  return absl::OkStatus();
}

}  // namespace keyward::crypto
