#include "crypto/internal/openssl_util.h"

#include <openssl/err.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"

namespace keyward::crypto::internal {
namespace {

template <typename T, typename FetchFn>
T* FetchOnce(const char* name, FetchFn fetch) {
  static std::mutex mu;
  static auto* cache = new std::map<std::string, T*>();
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache->find(name);
  if (it != cache->end()) return it->second;
  T* alg = fetch(nullptr, name, nullptr);
  if (alg == nullptr) {
    std::fprintf(stderr,
                 "keyward: OpenSSL has no %s implementation; the OpenSSL 3 "
                 "installation is broken\n",
                 name);
    std::abort();
  }
  cache->emplace(name, alg);
  return alg;
}

}  // namespace

const EVP_CIPHER* FetchCipher(const char* name) {
  return FetchOnce<EVP_CIPHER>(name, EVP_CIPHER_fetch);
}
EVP_MAC* FetchMac(const char* name) {
  return FetchOnce<EVP_MAC>(name, EVP_MAC_fetch);
}
EVP_KDF* FetchKdf(const char* name) {
  return FetchOnce<EVP_KDF>(name, EVP_KDF_fetch);
}

absl::Status OpenSslError(absl::string_view what) {
  unsigned long code = ERR_get_error();
  char reason[256] = "no detail";
  if (code != 0) ERR_error_string_n(code, reason, sizeof(reason));
  ERR_clear_error();
  return absl::InternalError(absl::StrCat(what, " (OpenSSL: ", reason, ")"));
}

}  // namespace keyward::crypto::internal
