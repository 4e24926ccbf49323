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
  // Keyed once: each tag starts from a copy of this context, which spares
  // the digest look-up and the key's two hash blocks per call.  The
  // context holds the key; EVP_MAC_CTX_free wipes it.
  static EVP_MAC* mac = internal::FetchMac("HMAC");
  KeyedCtx keyed(EVP_MAC_CTX_new(mac));
  if (keyed == nullptr) return internal::OpenSslError("EVP_MAC_CTX_new");
  char digest[] = "SHA2-256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(keyed.get(), key.data(), key.size(), params) != 1) {
    return internal::OpenSslError("HMAC-SHA-256 key");
  }
  return std::unique_ptr<HmacSha256>(new HmacSha256(std::move(keyed), tag_size));
}

HmacSha256::~HmacSha256() = default;

void HmacSha256::FreeCtx::operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }

absl::StatusOr<std::string> HmacSha256::ComputeMac(
    absl::string_view data) const {
  // Copying reads the keyed context only, so threads may share it.
  internal::MacCtxPtr ctx(EVP_MAC_CTX_dup(keyed_.get()));
  if (ctx == nullptr) return internal::OpenSslError("EVP_MAC_CTX_dup");
  if (EVP_MAC_update(ctx.get(), internal::U8(data), data.size()) != 1) {
    return internal::OpenSslError("HMAC-SHA-256");
  }
  unsigned char full[kHmacSha256TagSize];
  size_t len = 0;
  if (EVP_MAC_final(ctx.get(), full, &len, sizeof(full)) != 1 ||
      len != kHmacSha256TagSize) {
    OPENSSL_cleanse(full, sizeof(full));
    return internal::OpenSslError("HMAC-SHA-256 final");
  }
  std::string tag(reinterpret_cast<const char*>(full), tag_size_);
  OPENSSL_cleanse(full, sizeof(full));
  return tag;
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
