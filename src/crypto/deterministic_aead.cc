#include "crypto/deterministic_aead.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "crypto/internal/openssl_util.h"

namespace keyward::crypto {

using internal::CipherCtxPtr;
using internal::OpenSslError;
using internal::U8;

namespace {
const EVP_CIPHER* AesSiv() {
  static const EVP_CIPHER* cipher = internal::FetchCipher("AES-256-SIV");
  return cipher;
}
}  // namespace

absl::StatusOr<std::unique_ptr<DeterministicAead>> DeterministicAead::New(
    const SecretData& key) {
  if (key.size() != kAesSivKeySize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "AES-256-SIV needs a ", kAesSivKeySize, "-byte key, got ", key.size(),
        " bytes"));
  }
  return std::unique_ptr<DeterministicAead>(
      new DeterministicAead(key.Clone()));
}

absl::StatusOr<std::string> DeterministicAead::EncryptDeterministically(
    absl::string_view plaintext, absl::string_view aad) const {
  if (plaintext.empty()) {
    return absl::InvalidArgumentError(
        "AES-SIV cannot encrypt an empty plaintext with OpenSSL 3.0; encode "
        "the field so it is never empty (docs/decisions/0004)");
  }
  if (plaintext.size() > internal::kMaxEvpLength ||
      aad.size() > internal::kMaxEvpLength) {
    return absl::InvalidArgumentError("AES-SIV input larger than 1 GiB");
  }
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr) return OpenSslError("EVP_CIPHER_CTX_new");
  if (EVP_EncryptInit_ex2(ctx.get(), AesSiv(), key_.data(), nullptr,
                          nullptr) != 1) {
    return OpenSslError("AES-SIV init");
  }
  int len = 0;
  // RFC 5297 with one associated-data component (S1 = aad).  OpenSSL treats
  // each update with a null output as one component, so an empty one must be
  // passed too for the result to match the one-component definition.
  if (EVP_EncryptUpdate(ctx.get(), nullptr, &len, U8(aad),
                        static_cast<int>(aad.size())) != 1) {
    return OpenSslError("AES-SIV associated data");
  }
  std::string out(kAesSivTagSize + plaintext.size(), '\0');
  auto* body = reinterpret_cast<unsigned char*>(out.data()) + kAesSivTagSize;
  if (EVP_EncryptUpdate(ctx.get(), body, &len, U8(plaintext),
                        static_cast<int>(plaintext.size())) != 1) {
    return OpenSslError("AES-SIV encrypt");
  }
  if (EVP_EncryptFinal_ex(ctx.get(), body + len, &len) != 1) {
    return OpenSslError("AES-SIV encrypt final");
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, kAesSivTagSize,
                          out.data()) != 1) {
    return OpenSslError("AES-SIV get tag");
  }
  return out;
}

absl::StatusOr<SecretData> DeterministicAead::DecryptDeterministically(
    absl::string_view ciphertext, absl::string_view aad) const {
  if (ciphertext.size() <= kAesSivTagSize) {
    return absl::InvalidArgumentError(
        "AES-SIV ciphertext too short: it must hold the 16-byte synthetic IV "
        "and at least one byte");
  }
  if (ciphertext.size() > internal::kMaxEvpLength ||
      aad.size() > internal::kMaxEvpLength) {
    return absl::InvalidArgumentError("AES-SIV input larger than 1 GiB");
  }
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr) return OpenSslError("EVP_CIPHER_CTX_new");
  if (EVP_DecryptInit_ex2(ctx.get(), AesSiv(), key_.data(), nullptr,
                          nullptr) != 1) {
    return OpenSslError("AES-SIV init");
  }
  unsigned char tag[kAesSivTagSize];
  std::memcpy(tag, ciphertext.data(), kAesSivTagSize);
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, kAesSivTagSize,
                          tag) != 1) {
    return OpenSslError("AES-SIV set tag");
  }
  int len = 0;
  if (EVP_DecryptUpdate(ctx.get(), nullptr, &len, U8(aad),
                        static_cast<int>(aad.size())) != 1) {
    return OpenSslError("AES-SIV associated data");
  }
  absl::string_view body = ciphertext.substr(kAesSivTagSize);
  SecretData plaintext(body.size());
  unsigned char* out = plaintext.data();
  // OpenSSL checks the SIV inside this update; on mismatch it fails and we
  // wipe whatever it wrote.
  bool ok = EVP_DecryptUpdate(ctx.get(), out, &len, U8(body),
                              static_cast<int>(body.size())) == 1 &&
            EVP_DecryptFinal_ex(ctx.get(), out + len, &len) == 1;
  if (!ok) {
    ERR_clear_error();
    plaintext.Clear();
    return absl::InvalidArgumentError(
        "authentication failed: the AES-SIV ciphertext or associated data was "
        "modified, or the key is wrong");
  }
  return plaintext;
}

}  // namespace keyward::crypto
