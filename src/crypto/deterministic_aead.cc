#include "crypto/deterministic_aead.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <cstring>
#include <initializer_list>

#include "absl/strings/str_cat.h"
#include "crypto/internal/openssl_util.h"

namespace keyward::crypto {

using internal::CipherCtxPtr;
using internal::MacCtxPtr;
using internal::OpenSslError;
using internal::U8;

// RFC 5297 composed from OpenSSL's AES-CMAC and AES-CTR: OpenSSL 3.0's own
// "AES-256-SIV" cipher cannot encrypt an empty plaintext
// (docs/decisions/0023).  Only the S2V chaining (doubling, xorend, padding)
// is written here; every block cipher and MAC call is OpenSSL's.
namespace {

constexpr size_t kBlock = 16;
constexpr size_t kHalfKey = kAesSivKeySize / 2;

const EVP_CIPHER* AesCtr() {
  static const EVP_CIPHER* cipher = internal::FetchCipher("AES-256-CTR");
  return cipher;
}

// dbl() of RFC 5297 §2.3: multiplication by x in GF(2^128), without a
// secret-dependent branch.
void Dbl(unsigned char b[kBlock]) {
  const unsigned char carry = static_cast<unsigned char>(-(b[0] >> 7));
  for (size_t i = 0; i < kBlock - 1; ++i) {
    b[i] = static_cast<unsigned char>((b[i] << 1) | (b[i + 1] >> 7));
  }
  b[kBlock - 1] = static_cast<unsigned char>((b[kBlock - 1] << 1) ^ (carry & 0x87));
}

void XorInto(unsigned char* dst, const unsigned char* src, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] ^= src[i];
}

// Wipes a stack block on every path out of a scope.
struct BlockWiper {
  unsigned char* p;
  ~BlockWiper() { OPENSSL_cleanse(p, kBlock); }
};

}  // namespace

struct DeterministicAead::State {
  MacCtxPtr cmac;          // keyed with K1; duplicated per computation
  SecretData ctr_key;      // K2
  unsigned char d0[kBlock];  // AES-CMAC(K1, 0^128): S2V's first value
  ~State() { OPENSSL_cleanse(d0, sizeof(d0)); }

  // AES-CMAC(K1, concatenation of `chunks`).
  absl::Status Cmac(std::initializer_list<absl::string_view> chunks,
                    unsigned char out[kBlock]) const {
    MacCtxPtr ctx(EVP_MAC_CTX_dup(cmac.get()));
    if (ctx == nullptr) return OpenSslError("EVP_MAC_CTX_dup");
    for (absl::string_view c : chunks) {
      if (!c.empty() && EVP_MAC_update(ctx.get(), U8(c), c.size()) != 1) {
        return OpenSslError("AES-CMAC update");
      }
    }
    size_t len = 0;
    if (EVP_MAC_final(ctx.get(), out, &len, kBlock) != 1 || len != kBlock) {
      return OpenSslError("AES-CMAC final");
    }
    return absl::OkStatus();
  }

  // S2V(K1, associated data, plaintext) of RFC 5297 §2.4, two components.
  absl::Status S2v(absl::string_view aad, absl::string_view plaintext,
                   unsigned char v[kBlock]) const {
    unsigned char d[kBlock];
    unsigned char t[kBlock];
    BlockWiper wipe_d{d}, wipe_t{t};
    std::memcpy(d, d0, kBlock);
    Dbl(d);
    if (absl::Status s = Cmac({aad}, t); !s.ok()) return s;
    XorInto(d, t, kBlock);
    const char* tp = reinterpret_cast<const char*>(t);
    if (plaintext.size() >= kBlock) {
      // T = plaintext xorend D: only the last block changes.
      const size_t head = plaintext.size() - kBlock;
      std::memcpy(t, plaintext.data() + head, kBlock);
      XorInto(t, d, kBlock);
      return Cmac({plaintext.substr(0, head), absl::string_view(tp, kBlock)}, v);
    }
    // T = dbl(D) xor pad(plaintext); pad appends 0x80 then zeros.
    Dbl(d);
    std::memset(t, 0, kBlock);
    if (!plaintext.empty()) std::memcpy(t, plaintext.data(), plaintext.size());
    t[plaintext.size()] = 0x80;
    XorInto(t, d, kBlock);
    return Cmac({absl::string_view(tp, kBlock)}, v);
  }

  // AES-256-CTR under K2 from Q = V with bits 31 and 63 cleared (§2.6).
  absl::Status Ctr(const unsigned char v[kBlock], absl::string_view in,
                   unsigned char* out) const {
    if (in.empty()) return absl::OkStatus();
    unsigned char q[kBlock];
    BlockWiper wipe_q{q};
    std::memcpy(q, v, kBlock);
    q[8] &= 0x7f;
    q[12] &= 0x7f;
    CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    if (ctx == nullptr) return OpenSslError("EVP_CIPHER_CTX_new");
    int len = 0, final_len = 0;
    if (EVP_EncryptInit_ex2(ctx.get(), AesCtr(), ctr_key.data(), q, nullptr) != 1 ||
        EVP_EncryptUpdate(ctx.get(), out, &len, U8(in), static_cast<int>(in.size())) != 1 ||
        EVP_EncryptFinal_ex(ctx.get(), out + len, &final_len) != 1) {
      return OpenSslError("AES-256-CTR");
    }
    return absl::OkStatus();
  }
};

DeterministicAead::DeterministicAead(std::unique_ptr<State> state)
    : state_(std::move(state)) {}
DeterministicAead::~DeterministicAead() = default;

absl::StatusOr<std::unique_ptr<DeterministicAead>> DeterministicAead::New(
    const SecretData& key) {
  if (key.size() != kAesSivKeySize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "AES-256-SIV needs a ", kAesSivKeySize, "-byte key, got ", key.size(),
        " bytes"));
  }
  static EVP_MAC* const cmac = internal::FetchMac("CMAC");
  auto state = std::make_unique<State>();
  state->cmac.reset(EVP_MAC_CTX_new(cmac));
  if (state->cmac == nullptr) return OpenSslError("EVP_MAC_CTX_new");
  char cipher[] = "AES-256-CBC";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0),
      OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(state->cmac.get(), key.data(), kHalfKey, params) != 1) {
    return OpenSslError("AES-CMAC init");
  }
  state->ctr_key = SecretData::CopyFrom(key.span().subspan(kHalfKey));
  static constexpr char kZero[kBlock] = {};
  if (absl::Status s = state->Cmac({absl::string_view(kZero, kBlock)}, state->d0);
      !s.ok()) {
    return s;
  }
  return std::unique_ptr<DeterministicAead>(new DeterministicAead(std::move(state)));
}

absl::StatusOr<std::string> DeterministicAead::EncryptDeterministically(
    absl::string_view plaintext, absl::string_view aad) const {
  if (plaintext.size() > internal::kMaxEvpLength ||
      aad.size() > internal::kMaxEvpLength) {
    return absl::InvalidArgumentError("AES-SIV input larger than 1 GiB");
  }
  std::string out(kAesSivTagSize + plaintext.size(), '\0');
  auto* v = reinterpret_cast<unsigned char*>(out.data());
  absl::Status s = state_->S2v(aad, plaintext, v);
  if (s.ok()) s = state_->Ctr(v, plaintext, v + kAesSivTagSize);
  if (!s.ok()) {
    OPENSSL_cleanse(out.data(), out.size());
    return s;
  }
  return out;
}

absl::StatusOr<SecretData> DeterministicAead::DecryptDeterministically(
    absl::string_view ciphertext, absl::string_view aad) const {
  if (ciphertext.size() < kAesSivTagSize) {
    return absl::InvalidArgumentError(
        "AES-SIV ciphertext too short: it must hold the 16-byte synthetic IV");
  }
  if (ciphertext.size() > internal::kMaxEvpLength ||
      aad.size() > internal::kMaxEvpLength) {
    return absl::InvalidArgumentError("AES-SIV input larger than 1 GiB");
  }
  const auto* v = U8(ciphertext);
  absl::string_view body = ciphertext.substr(kAesSivTagSize);
  SecretData plaintext(body.size());
  unsigned char expected[kBlock];
  BlockWiper wipe_expected{expected};
  absl::Status s = state_->Ctr(v, body, plaintext.data());
  if (s.ok()) s = state_->S2v(aad, plaintext.AsStringView(), expected);
  if (!s.ok()) {
    plaintext.Clear();
    return s;
  }
  if (CRYPTO_memcmp(expected, v, kAesSivTagSize) != 0) {
    plaintext.Clear();
    return absl::InvalidArgumentError(
        "authentication failed: the AES-SIV ciphertext or associated data was "
        "modified, or the key is wrong");
  }
  return plaintext;
}

}  // namespace keyward::crypto
