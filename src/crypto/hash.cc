#include "crypto/hash.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

namespace keyward::crypto {
namespace {

[[noreturn]] void DigestFailed() {
  std::fprintf(stderr, "keyward: SHA-256 failed inside OpenSSL\n");
  std::abort();
}

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

}  // namespace

std::array<uint8_t, kSha256Size> Sha256(absl::string_view data) {
  return Sha256Concat({data});
}

std::array<uint8_t, kSha256Size> Sha256Concat(
    std::initializer_list<absl::string_view> parts) {
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  if (md == nullptr) DigestFailed();
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  if (ctx == nullptr || EVP_DigestInit_ex2(ctx.get(), md, nullptr) != 1) {
    DigestFailed();
  }
  for (absl::string_view part : parts) {
    if (EVP_DigestUpdate(ctx.get(), part.data(), part.size()) != 1) {
      DigestFailed();
    }
  }
  std::array<uint8_t, kSha256Size> out;
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), out.data(), &len) != 1 ||
      len != kSha256Size) {
    DigestFailed();
  }
  return out;
}

size_t HashSize(HashFunction hash) {
  return hash == HashFunction::kSha512 ? 64 : 32;
}

}  // namespace keyward::crypto
