#include "crypto/key_wrap.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include "absl/strings/str_cat.h"
#include "crypto/internal/openssl_util.h"

namespace keyward::crypto {

using internal::CipherCtxPtr;
using internal::OpenSslError;
using internal::U8;

namespace {

const EVP_CIPHER* AesKwp() {
  static const EVP_CIPHER* cipher = internal::FetchCipher("AES-256-WRAP-PAD");
  return cipher;
}

// Runs one wrap or unwrap; returns false if OpenSSL refused the input.
bool RunKwp(const SecretData& kek, bool encrypt, absl::string_view in,
            unsigned char* out, size_t* out_len) {
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr) return false;
  EVP_CIPHER_CTX_set_flags(ctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  if (EVP_CipherInit_ex2(ctx.get(), AesKwp(), kek.data(), nullptr,
                         encrypt ? 1 : 0, nullptr) != 1) {
    return false;
  }
  int len = 0;
  if (EVP_CipherUpdate(ctx.get(), out, &len, U8(in),
                       static_cast<int>(in.size())) != 1 ||
      len < 0) {
    return false;
  }
  int final_len = 0;
  if (EVP_CipherFinal_ex(ctx.get(), out + len, &final_len) != 1) return false;
  *out_len = static_cast<size_t>(len + final_len);
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<KeyWrap>> KeyWrap::New(const SecretData& kek) {
  if (kek.size() != kKeyWrapKekSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("AES-KWP needs a ", kKeyWrapKekSize,
                     "-byte key-encryption key, got ", kek.size(), " bytes"));
  }
  return std::unique_ptr<KeyWrap>(new KeyWrap(kek.Clone()));
}

absl::StatusOr<std::string> KeyWrap::Wrap(const SecretData& key) const {
  if (key.empty() || key.size() > kKeyWrapMaxKeySize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "AES-KWP wraps keys of 1 to ", kKeyWrapMaxKeySize, " bytes, got ",
        key.size()));
  }
  std::string out(((key.size() + 7) / 8) * 8 + 8, '\0');
  size_t out_len = 0;
  if (!RunKwp(kek_, /*encrypt=*/true, key.AsStringView(),
              reinterpret_cast<unsigned char*>(out.data()), &out_len)) {
    return OpenSslError("AES-KWP wrap");
  }
  if (out_len != out.size()) {
    return absl::InternalError("AES-KWP wrap produced an unexpected length");
  }
  return out;
}

absl::StatusOr<SecretData> KeyWrap::Unwrap(absl::string_view wrapped) const {
  if (wrapped.size() < 16 || wrapped.size() % 8 != 0 ||
      wrapped.size() > kKeyWrapMaxKeySize + 8) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not an AES-KWP wrapped key: ", wrapped.size(),
        " bytes (must be a multiple of 8, at least 16)"));
  }
  // OpenSSL may write up to the input length before it strips the padding.
  SecretData out(wrapped.size());
  size_t out_len = 0;
  if (!RunKwp(kek_, /*encrypt=*/false, wrapped, out.data(), &out_len) ||
      out_len == 0 || out_len > wrapped.size() - 8) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        "key unwrap failed: the wrapped key was modified or was wrapped under "
        "a different key-encryption key");
  }
  out.Resize(out_len);
  return out;
}

}  // namespace keyward::crypto
