#include "crypto/hkdf.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "crypto/internal/openssl_util.h"

namespace keyward::crypto {

namespace {

absl::StatusOr<SecretData> Derive(HashFunction hash, int mode,
                                  absl::string_view ikm,
                                  absl::string_view salt,
                                  absl::string_view info, size_t size) {
  const size_t max = 255 * HashSize(hash);
  if (size == 0 || size > max) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HKDF output size must be 1 to ", max, " bytes, got ", size));
  }
  if (ikm.size() > internal::kMaxEvpLength ||
      salt.size() > internal::kMaxEvpLength ||
      info.size() > internal::kMaxEvpLength) {
    return absl::InvalidArgumentError("HKDF input larger than 1 GiB");
  }
  static EVP_KDF* kdf = internal::FetchKdf("HKDF");
  internal::KdfCtxPtr ctx(EVP_KDF_CTX_new(kdf));
  if (ctx == nullptr) return internal::OpenSslError("EVP_KDF_CTX_new");

  char digest_name[16];
  std::snprintf(digest_name, sizeof(digest_name), "%s",
                hash == HashFunction::kSha512 ? "SHA2-512" : "SHA2-256");
  // OpenSSL's params take non-const pointers but only read them.
  auto* ikm_ptr = const_cast<char*>(ikm.data());
  auto* salt_ptr = const_cast<char*>(salt.data());
  auto* info_ptr = const_cast<char*>(info.data());
  char empty[1] = {0};
  OSSL_PARAM params[6];
  int n = 0;
  params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
  params[n++] =
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest_name, 0);
  params[n++] = OSSL_PARAM_construct_octet_string(
      OSSL_KDF_PARAM_KEY, ikm.empty() ? empty : ikm_ptr, ikm.size());
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                    salt_ptr, salt.size());
  }
  params[n++] = OSSL_PARAM_construct_octet_string(
      OSSL_KDF_PARAM_INFO, info.empty() ? empty : info_ptr, info.size());
  params[n] = OSSL_PARAM_construct_end();

  SecretData out(size);
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    return internal::OpenSslError("HKDF derive");
  }
  return out;
}

}  // namespace

absl::StatusOr<SecretData> Hkdf(HashFunction hash, absl::string_view ikm,
                                absl::string_view salt, absl::string_view info,
                                size_t size) {
  return Derive(hash, EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND, ikm, salt, info,
                size);
}

absl::StatusOr<SecretData> HkdfExpand(HashFunction hash, absl::string_view prk,
                                      absl::string_view info, size_t size) {
  if (prk.size() < HashSize(hash)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HKDF-Expand needs a pseudorandom key of at least ", HashSize(hash),
        " bytes, got ", prk.size()));
  }
  return Derive(hash, EVP_KDF_HKDF_MODE_EXPAND_ONLY, prk, "", info, size);
}

}  // namespace keyward::crypto
