#include "crypto/hkdf.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <cstdio>
#include <initializer_list>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "crypto/internal/openssl_util.h"

namespace keyward::crypto {

namespace {

internal::KdfCtxPtr NewHkdfContext(HashFunction hash) {
  internal::KdfCtxPtr ctx(EVP_KDF_CTX_new(internal::FetchKdf("HKDF")));
  char name[16];
  std::snprintf(name, sizeof(name), "%s",
                hash == HashFunction::kSha512 ? "SHA2-512" : "SHA2-256");
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, name, 0),
      OSSL_PARAM_construct_end()};
  if (ctx != nullptr && EVP_KDF_CTX_set_params(ctx.get(), params) != 1) {
    ctx.reset();
  }
  return ctx;
}

absl::Status CheckSizes(HashFunction hash, size_t size,
                        std::initializer_list<absl::string_view> inputs) {
  const size_t max = 255 * HashSize(hash);
  if (size == 0 || size > max) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HKDF output size must be 1 to ", max, " bytes, got ", size));
  }
  for (absl::string_view in : inputs) {
    if (in.size() > internal::kMaxEvpLength) {
      return absl::InvalidArgumentError("HKDF input larger than 1 GiB");
    }
  }
  return absl::OkStatus();
}

char kEmpty[1] = {0};

OSSL_PARAM OctetParam(const char* name, absl::string_view value) {
  // OpenSSL's params take non-const pointers but only read them.
  return OSSL_PARAM_construct_octet_string(
      name, value.empty() ? kEmpty : const_cast<char*>(value.data()),
      value.size());
}

absl::StatusOr<SecretData> Derive(HashFunction hash, int mode,
                                  absl::string_view ikm,
                                  absl::string_view salt,
                                  absl::string_view info, size_t size) {
  KW_RETURN_IF_ERROR(CheckSizes(hash, size, {ikm, salt, info}));
  internal::KdfCtxPtr ctx = NewHkdfContext(hash);
  if (ctx == nullptr) return internal::OpenSslError("HKDF context");
  OSSL_PARAM params[5];
  int n = 0;
  params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
  params[n++] = OctetParam(OSSL_KDF_PARAM_KEY, ikm);
  if (!salt.empty()) params[n++] = OctetParam(OSSL_KDF_PARAM_SALT, salt);
  params[n++] = OctetParam(OSSL_KDF_PARAM_INFO, info);
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
  KW_RETURN_IF_ERROR(CheckSizes(hash, size, {prk, info}));
  // Creating an HKDF context fetches its digest by name, which costs more
  // than a whole derivation, and OpenSSL 3.0 cannot duplicate one.  So each
  // thread keeps one context per hash with the digest set, and every call
  // sets all the parameters Expand uses (mode, key, info; salt is unused in
  // this mode).  Afterwards the key is overwritten, which wipes OpenSSL's
  // copy of it, so no key outlives the call.
  //
  // An empty info gets a context of its own: OpenSSL 3.0.19 keeps the
  // previous call's info length when given an empty one, and reads past
  // the freed info (a crash found by HkdfSha256ExpanderTest).
  thread_local internal::KdfCtxPtr sha256 = NewHkdfContext(HashFunction::kSha256);
  thread_local internal::KdfCtxPtr sha512 = NewHkdfContext(HashFunction::kSha512);
  internal::KdfCtxPtr fresh;
  if (info.empty()) fresh = NewHkdfContext(hash);
  EVP_KDF_CTX* ctx = fresh != nullptr                 ? fresh.get()
                     : hash == HashFunction::kSha512 ? sha512.get()
                                                     : sha256.get();
  if (ctx == nullptr) return internal::OpenSslError("HKDF context");
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
                         OctetParam(OSSL_KDF_PARAM_KEY, prk),
                         OctetParam(OSSL_KDF_PARAM_INFO, info),
                         OSSL_PARAM_construct_end()};
  SecretData out(size);
  const bool ok = EVP_KDF_derive(ctx, out.data(), out.size(), params) == 1;
  char zero[1] = {0};
  OSSL_PARAM wipe[] = {
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, zero, 1),
      OSSL_PARAM_construct_end()};
  EVP_KDF_CTX_set_params(ctx, wipe);
  if (!ok) return internal::OpenSslError("HKDF-Expand derive");
  return out;
}

struct HkdfSha256Expander::Contexts {
  // Keyed and never used: what a concurrent caller duplicates.
  internal::MacCtxPtr pristine;
  std::mutex mu;
  internal::MacCtxPtr work;  // GUARDED_BY(mu): keyed, reset per block
};

HkdfSha256Expander::HkdfSha256Expander(std::unique_ptr<Contexts> contexts)
    : contexts_(std::move(contexts)) {}
HkdfSha256Expander::~HkdfSha256Expander() = default;  // freeing a context wipes it

absl::StatusOr<std::unique_ptr<HkdfSha256Expander>> HkdfSha256Expander::New(
    absl::string_view prk) {
  constexpr size_t kHashSize = 32;
  if (prk.size() < kHashSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HKDF-Expand needs a pseudorandom key of at least ", kHashSize, " bytes, got ",
        prk.size()));
  }
  if (prk.size() > internal::kMaxEvpLength) {
    return absl::InvalidArgumentError("HKDF key larger than 1 GiB");
  }
  auto contexts = std::make_unique<Contexts>();
  contexts->pristine.reset(EVP_MAC_CTX_new(internal::FetchMac("HMAC")));
  if (contexts->pristine == nullptr) return internal::OpenSslError("HMAC context");
  char digest[] = "SHA2-256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(contexts->pristine.get(), internal::U8(prk), prk.size(), params) != 1) {
    return internal::OpenSslError("HMAC key");
  }
  contexts->work.reset(EVP_MAC_CTX_dup(contexts->pristine.get()));
  if (contexts->work == nullptr) return internal::OpenSslError("HMAC context copy");
  return std::unique_ptr<HkdfSha256Expander>(new HkdfSha256Expander(std::move(contexts)));
}

absl::Status HkdfSha256Expander::Expand(absl::string_view info, absl::Span<uint8_t> out) const {
  KW_RETURN_IF_ERROR(CheckSizes(HashFunction::kSha256, out.size(), {info}));
  std::unique_lock<std::mutex> lock(contexts_->mu, std::try_to_lock);
  internal::MacCtxPtr copy;
  EVP_MAC_CTX* ctx = contexts_->work.get();
  if (!lock.owns_lock()) {
    copy.reset(EVP_MAC_CTX_dup(contexts_->pristine.get()));
    if (copy == nullptr) return internal::OpenSslError("HMAC context copy");
    ctx = copy.get();
  }
  unsigned char block[32];
  size_t previous = 0;  // T(0) is empty
  bool ok = true;
  for (size_t done = 0, i = 1; ok && done < out.size(); ++i) {
    const unsigned char counter = static_cast<unsigned char>(i);
    size_t len = 0;
    // A null key resets the context to its keyed state (no new key schedule).
    ok = EVP_MAC_init(ctx, nullptr, 0, nullptr) == 1 &&
         EVP_MAC_update(ctx, block, previous) == 1 &&
         EVP_MAC_update(ctx, internal::U8(info), info.size()) == 1 &&
         EVP_MAC_update(ctx, &counter, 1) == 1 &&
         EVP_MAC_final(ctx, block, &len, sizeof(block)) == 1 && len == sizeof(block);
    if (ok) {
      const size_t take = std::min(sizeof(block), out.size() - done);
      std::memcpy(out.data() + done, block, take);
      done += take;
      previous = sizeof(block);
    }
  }
  OPENSSL_cleanse(block, sizeof(block));
  if (!ok) {
    OPENSSL_cleanse(out.data(), out.size());
    return internal::OpenSslError("HKDF-Expand (HMAC)");
  }
  return absl::OkStatus();
}

}  // namespace keyward::crypto
