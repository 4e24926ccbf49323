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

namespace {
const EVP_MD* Sha256Md() {
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  if (md == nullptr) DigestFailed();
  return md;
}
}  // namespace

Sha256Stream::Sha256Stream() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr ||
      EVP_DigestInit_ex2(static_cast<EVP_MD_CTX*>(ctx_), Sha256Md(), nullptr) != 1) {
    DigestFailed();
  }
}

Sha256Stream::~Sha256Stream() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

Sha256Stream::Sha256Stream(const Sha256Stream& other) : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_MD_CTX_copy_ex(static_cast<EVP_MD_CTX*>(ctx_),
                                            static_cast<const EVP_MD_CTX*>(other.ctx_)) != 1) {
    DigestFailed();
  }
}

Sha256Stream& Sha256Stream::operator=(const Sha256Stream& other) {
  if (this != &other &&
      EVP_MD_CTX_copy_ex(static_cast<EVP_MD_CTX*>(ctx_),
                         static_cast<const EVP_MD_CTX*>(other.ctx_)) != 1) {
    DigestFailed();
  }
  return *this;
}

void Sha256Stream::Update(absl::string_view data) {
  if (EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size()) != 1) {
    DigestFailed();
  }
}

std::array<uint8_t, kSha256Size> Sha256Stream::Digest() const {
  Sha256Stream copy(*this);
  std::array<uint8_t, kSha256Size> out;
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(copy.ctx_), out.data(), &len) != 1 ||
      len != kSha256Size) {
    DigestFailed();
  }
  return out;
}

size_t HashSize(HashFunction hash) {
  return hash == HashFunction::kSha512 ? 64 : 32;
}

}  // namespace keyward::crypto
