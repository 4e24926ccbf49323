// Small RAII and error helpers around OpenSSL 3 EVP objects.
#ifndef KEYWARD_CRYPTO_INTERNAL_OPENSSL_UTIL_H_
#define KEYWARD_CRYPTO_INTERNAL_OPENSSL_UTIL_H_

#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace keyward::crypto::internal {

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

struct MacCtxDeleter {
  void operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }
};
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter>;

struct KdfCtxDeleter {
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};
using KdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, KdfCtxDeleter>;

// Fetched algorithm implementations, fetched once per process from the
// default provider and kept for its lifetime.  Never null: a missing
// algorithm is a broken OpenSSL installation and aborts at first use.
const EVP_CIPHER* FetchCipher(const char* name);
EVP_MAC* FetchMac(const char* name);
EVP_KDF* FetchKdf(const char* name);

// Drains OpenSSL's thread-local error queue and returns kInternal with
// `what` and OpenSSL's reason.  OpenSSL's reasons never contain data.
absl::Status OpenSslError(absl::string_view what);

inline const unsigned char* U8(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// Lengths passed to EVP functions are ints; everything Keyward hands them is
// checked against this first.
inline constexpr size_t kMaxEvpLength = size_t{1} << 30;

}  // namespace keyward::crypto::internal

#endif  // KEYWARD_CRYPTO_INTERNAL_OPENSSL_UTIL_H_
