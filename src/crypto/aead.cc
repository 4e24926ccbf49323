#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "crypto/aead.h"
#include "crypto/internal/nonce_aead.h"
#include "crypto/internal/openssl_util.h"
#include "crypto/random.h"

namespace keyward::crypto {

absl::string_view AeadAlgorithmName(AeadAlgorithm algorithm) {
  switch (algorithm) {
    case AeadAlgorithm::kAes256Gcm:
      return "AES-256-GCM";
    case AeadAlgorithm::kChaCha20Poly1305:
      return "ChaCha20-Poly1305";
    case AeadAlgorithm::kXChaCha20Poly1305:
      return "XChaCha20-Poly1305";
  }
  return "unknown";
}

size_t AeadNonceSize(AeadAlgorithm algorithm) {
  return algorithm == AeadAlgorithm::kXChaCha20Poly1305 ? 24 : 12;
}

namespace internal {
namespace {

absl::Status CheckSizes(absl::string_view nonce, size_t expected_nonce,
                        size_t input, absl::string_view aad, size_t out,
                        size_t expected_out) {
  if (nonce.size() != expected_nonce) {
    return absl::InvalidArgumentError(
        absl::StrCat("nonce must be ", expected_nonce, " bytes, got ",
                     nonce.size()));
  }
  if (input > kMaxEvpLength || aad.size() > kMaxEvpLength) {
    return absl::InvalidArgumentError(
        "AEAD input or associated data larger than 1 GiB; split it (the "
        "message format frames large inputs)");
  }
  if (out != expected_out) {
    return absl::InvalidArgumentError("AEAD output buffer has the wrong size");
  }
  return absl::OkStatus();
}

absl::Status AuthenticationFailed() {
  ERR_clear_error();
  return absl::InvalidArgumentError(
      "authentication failed: the ciphertext, its tag or the associated data "
      "was modified, or the key is wrong");
}

// AES-256-GCM and ChaCha20-Poly1305 through OpenSSL's EVP interface.
class EvpNonceAead final : public NonceAead {
 public:
  EvpNonceAead(AeadAlgorithm algorithm, const EVP_CIPHER* cipher,
               SecretData key)
      : algorithm_(algorithm), cipher_(cipher), key_(std::move(key)) {}

  absl::Status Seal(absl::string_view nonce, absl::string_view plaintext,
                    absl::string_view aad,
                    absl::Span<uint8_t> out) const override {
    absl::Status status = SealImpl(nonce, plaintext, aad, out);
    if (!status.ok() && !out.empty()) OPENSSL_cleanse(out.data(), out.size());
    return status;
  }

  absl::Status Open(absl::string_view nonce, absl::string_view input,
                    absl::string_view aad,
                    absl::Span<uint8_t> out) const override {
    absl::Status status = OpenImpl(nonce, input, aad, out);
    if (!status.ok() && !out.empty()) OPENSSL_cleanse(out.data(), out.size());
    return status;
  }

  AeadAlgorithm algorithm() const override { return algorithm_; }

 private:
  // A context keyed once and reused while this object lives: keying (AES
  // key schedule, GHASH tables) costs as much as sealing a small record.
  // Reuse is for the common single-threaded pattern (one message on one
  // thread); concurrent callers that find it busy key a context of their
  // own.  Freeing a context wipes its key material.
  class ContextLease {
   public:
    ContextLease(const EvpNonceAead& aead, bool encrypt) {
      std::unique_lock<std::mutex> lock(aead.mu_, std::try_to_lock);
      if (lock.owns_lock()) {
        lock_ = std::move(lock);
        if (aead.cached_ != nullptr) {
          ctx_ = aead.cached_.get();
          keyed_ = true;
        } else {
          aead.cached_.reset(EVP_CIPHER_CTX_new());
          ctx_ = aead.cached_.get();
        }
      } else {
        own_.reset(EVP_CIPHER_CTX_new());
        ctx_ = own_.get();
      }
      encrypt_ = encrypt;
      cipher_ = aead.cipher_;
      key_ = aead.key_.data();
    }
    // Sets the nonce (and, the first time, the cipher and key).
    bool Init(absl::string_view nonce) {
      if (ctx_ == nullptr) return false;
      if (keyed_) {
        return EVP_CipherInit_ex2(ctx_, nullptr, nullptr, U8(nonce),
                                  encrypt_ ? 1 : 0, nullptr) == 1;
      }
      return EVP_CipherInit_ex2(ctx_, cipher_, key_, U8(nonce),
                                encrypt_ ? 1 : 0, nullptr) == 1;
    }
    EVP_CIPHER_CTX* get() const { return ctx_; }

   private:
    std::unique_lock<std::mutex> lock_;
    CipherCtxPtr own_;
    EVP_CIPHER_CTX* ctx_ = nullptr;
    bool keyed_ = false;
    bool encrypt_ = true;
    const EVP_CIPHER* cipher_ = nullptr;
    const uint8_t* key_ = nullptr;
  };

  absl::Status SealImpl(absl::string_view nonce, absl::string_view plaintext,
                        absl::string_view aad,
                        absl::Span<uint8_t> out) const {
    KW_RETURN_IF_ERROR(CheckSizes(nonce, 12, plaintext.size(), aad,
                                  out.size(), plaintext.size() + kAeadTagSize));
    ContextLease ctx(*this, /*encrypt=*/true);
    int len = 0;
    if (!ctx.Init(nonce)) return OpenSslError("AEAD encrypt init");
    if (!aad.empty() && EVP_EncryptUpdate(ctx.get(), nullptr, &len, U8(aad),
                                          static_cast<int>(aad.size())) != 1) {
      return OpenSslError("AEAD associated data");
    }
    int written = 0;
    if (!plaintext.empty()) {
      if (EVP_EncryptUpdate(ctx.get(), out.data(), &written, U8(plaintext),
                            static_cast<int>(plaintext.size())) != 1) {
        return OpenSslError("AEAD encrypt");
      }
    }
    if (EVP_EncryptFinal_ex(ctx.get(), out.data() + written, &len) != 1) {
      return OpenSslError("AEAD encrypt final");
    }
    if (static_cast<size_t>(written + len) != plaintext.size()) {
      return absl::InternalError("AEAD produced an unexpected length");
    }
    // The tag through the parameter interface directly: EVP_CIPHER_CTX_ctrl
    // would translate to the same call, at a cost that shows on small records.
    OSSL_PARAM get_tag[] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
                                          out.data() + plaintext.size(), kAeadTagSize),
        OSSL_PARAM_construct_end()};
    if (EVP_CIPHER_CTX_get_params(ctx.get(), get_tag) != 1) {
      return OpenSslError("AEAD get tag");
    }
    return absl::OkStatus();
  }

  absl::Status OpenImpl(absl::string_view nonce, absl::string_view input,
                        absl::string_view aad,
                        absl::Span<uint8_t> out) const {
    if (input.size() < kAeadTagSize) {
      return absl::InvalidArgumentError(
          "ciphertext is shorter than the authentication tag");
    }
    const size_t ct_size = input.size() - kAeadTagSize;
    KW_RETURN_IF_ERROR(
        CheckSizes(nonce, 12, input.size(), aad, out.size(), ct_size));
    ContextLease ctx(*this, /*encrypt=*/false);
    int len = 0;
    if (!ctx.Init(nonce)) return OpenSslError("AEAD decrypt init");
    // Copy the tag first: with in-place decryption `out` may alias `input`.
    unsigned char tag[kAeadTagSize];
    std::memcpy(tag, input.data() + ct_size, kAeadTagSize);
    OSSL_PARAM set_tag[] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, kAeadTagSize),
        OSSL_PARAM_construct_end()};
    if (EVP_CIPHER_CTX_set_params(ctx.get(), set_tag) != 1) {
      return OpenSslError("AEAD set tag");
    }
    if (!aad.empty() && EVP_DecryptUpdate(ctx.get(), nullptr, &len, U8(aad),
                                          static_cast<int>(aad.size())) != 1) {
      return AuthenticationFailed();
    }
    int written = 0;
    if (ct_size > 0 &&
        EVP_DecryptUpdate(ctx.get(), out.data(), &written, U8(input),
                          static_cast<int>(ct_size)) != 1) {
      return AuthenticationFailed();
    }
    if (EVP_DecryptFinal_ex(ctx.get(), out.data() + written, &len) != 1) {
      return AuthenticationFailed();
    }
    return absl::OkStatus();
  }

  const AeadAlgorithm algorithm_;
  const EVP_CIPHER* const cipher_;
  const SecretData key_;
  mutable std::mutex mu_;
  mutable CipherCtxPtr cached_;  // GUARDED_BY(mu_); keyed with key_ once set
};

// XChaCha20-Poly1305 through libsodium: OpenSSL 3.0 has no XChaCha.
class SodiumXChaChaNonceAead final : public NonceAead {
 public:
  explicit SodiumXChaChaNonceAead(SecretData key) : key_(std::move(key)) {}

  absl::Status Seal(absl::string_view nonce, absl::string_view plaintext,
                    absl::string_view aad,
                    absl::Span<uint8_t> out) const override {
    absl::Status status =
        CheckSizes(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
                   plaintext.size(), aad, out.size(),
                   plaintext.size() + kAeadTagSize);
    if (status.ok() &&
        crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
            out.data(), out.data() + plaintext.size(), nullptr, U8(plaintext),
            plaintext.size(), U8(aad), aad.size(), nullptr, U8(nonce),
            key_.data()) != 0) {
      status = absl::InternalError("XChaCha20-Poly1305 encryption failed");
    }
    if (!status.ok() && !out.empty()) sodium_memzero(out.data(), out.size());
    return status;
  }

  absl::Status Open(absl::string_view nonce, absl::string_view input,
                    absl::string_view aad,
                    absl::Span<uint8_t> out) const override {
    absl::Status status;
    if (input.size() < kAeadTagSize) {
      status = absl::InvalidArgumentError(
          "ciphertext is shorter than the authentication tag");
    } else {
      const size_t ct_size = input.size() - kAeadTagSize;
      status = CheckSizes(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
                          input.size(), aad, out.size(), ct_size);
      unsigned char tag[kAeadTagSize];
      if (status.ok()) {
        std::memcpy(tag, input.data() + ct_size, kAeadTagSize);
        if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                out.data(), nullptr, U8(input), ct_size, tag, U8(aad),
                aad.size(), U8(nonce), key_.data()) != 0) {
          status = AuthenticationFailed();
        }
      }
    }
    if (!status.ok() && !out.empty()) sodium_memzero(out.data(), out.size());
    return status;
  }

  AeadAlgorithm algorithm() const override {
    return AeadAlgorithm::kXChaCha20Poly1305;
  }

 private:
  const SecretData key_;
};

// AES-256-GCM through libsodium's AES-NI implementation, keyed once (the
// expanded key and GHASH state kept in wiped, locked memory): for many
// small records under one key, where OpenSSL's per-call EVP overhead
// dominates (docs/benchmarks.md, "Field-level encryption").  Only on CPUs
// with AES-NI and CLMUL; NewAesGcmForSmallRecords falls back to EVP.
//
// The message format makes one per small message (a fresh key each): the
// locked memory for the state then costs more than the key expansion, so
// each thread keeps one block of it, zeroed, from the last one destroyed.
constexpr size_t kSodiumStateBytes =
    sizeof(crypto_aead_aes256gcm_state) + alignof(crypto_aead_aes256gcm_state);

// Plain pointer in a trivially destructible thread_local, so an object
// destroyed after the thread's destructors ran (a static) finds "gone"
// rather than a dead object.
thread_local SecretData* spare_sodium_state = nullptr;
thread_local bool spare_sodium_state_gone = false;

struct SpareSodiumStateOwner {
  SpareSodiumStateOwner() { spare_sodium_state = &block; }
  ~SpareSodiumStateOwner() {
    spare_sodium_state = nullptr;
    spare_sodium_state_gone = true;
  }  // `block` is wiped as it is freed
  SecretData block;
};

// The calling thread's spare block (empty when there is none), or null
// once the thread is shutting down.
SecretData* SpareSodiumState() {
  if (spare_sodium_state_gone) return nullptr;
  thread_local SpareSodiumStateOwner owner;
  return spare_sodium_state;
}

SecretData TakeSodiumState() {
  SecretData* spare = SpareSodiumState();
  if (spare != nullptr && spare->size() == kSodiumStateBytes) return std::move(*spare);
  return SecretData(kSodiumStateBytes);
}

class SodiumAesGcmNonceAead final : public NonceAead {
 public:
  explicit SodiumAesGcmNonceAead(const uint8_t* key) : storage_(TakeSodiumState()) {
    void* p = storage_.data();
    size_t space = storage_.size();
    state_ = static_cast<crypto_aead_aes256gcm_state*>(
        std::align(alignof(crypto_aead_aes256gcm_state), sizeof(crypto_aead_aes256gcm_state),
                   p, space));
    // Never fails for a 32-byte key on a CPU where it is available (checked
    // by the factory); if it did, the zeroed state would fail every Open.
    if (crypto_aead_aes256gcm_beforenm(state_, key) != 0) {
      sodium_memzero(state_, sizeof(*state_));
    }
  }
  ~SodiumAesGcmNonceAead() override {
    sodium_memzero(storage_.data(), storage_.size());
    SecretData* spare = SpareSodiumState();
    if (spare != nullptr && spare->empty()) *spare = std::move(storage_);
  }
  SodiumAesGcmNonceAead(const SodiumAesGcmNonceAead&) = delete;
  SodiumAesGcmNonceAead& operator=(const SodiumAesGcmNonceAead&) = delete;

  absl::Status Seal(absl::string_view nonce, absl::string_view plaintext,
                    absl::string_view aad,
                    absl::Span<uint8_t> out) const override {
    absl::Status status = CheckSizes(nonce, crypto_aead_aes256gcm_NPUBBYTES, plaintext.size(),
                                     aad, out.size(), plaintext.size() + kAeadTagSize);
    if (status.ok() &&
        crypto_aead_aes256gcm_encrypt_detached_afternm(
            out.data(), out.data() + plaintext.size(), nullptr, U8(plaintext), plaintext.size(),
            U8(aad), aad.size(), nullptr, U8(nonce), state_) != 0) {
      status = absl::InternalError("AES-256-GCM encryption failed");
    }
    if (!status.ok() && !out.empty()) sodium_memzero(out.data(), out.size());
    return status;
  }

  absl::Status Open(absl::string_view nonce, absl::string_view input,
                    absl::string_view aad,
                    absl::Span<uint8_t> out) const override {
    absl::Status status;
    if (input.size() < kAeadTagSize) {
      status = absl::InvalidArgumentError("ciphertext is shorter than the authentication tag");
    } else {
      const size_t ct_size = input.size() - kAeadTagSize;
      status = CheckSizes(nonce, crypto_aead_aes256gcm_NPUBBYTES, input.size(), aad, out.size(),
                          ct_size);
      unsigned char tag[kAeadTagSize];
      if (status.ok()) {
        std::memcpy(tag, input.data() + ct_size, kAeadTagSize);
        if (crypto_aead_aes256gcm_decrypt_detached_afternm(out.data(), nullptr, U8(input),
                                                           ct_size, tag, U8(aad), aad.size(),
                                                           U8(nonce), state_) != 0) {
          status = AuthenticationFailed();
        }
      }
    }
    if (!status.ok() && !out.empty()) sodium_memzero(out.data(), out.size());
    return status;
  }

  AeadAlgorithm algorithm() const override { return AeadAlgorithm::kAes256Gcm; }

 private:
  SecretData storage_;  // zeroed when this object goes, wiped on free
  crypto_aead_aes256gcm_state* state_ = nullptr;
};

void InitSodiumOnce() {
  static const bool ok = sodium_init() >= 0;
  if (!ok) {
    std::fprintf(stderr, "keyward: libsodium failed to initialise\n");
    std::abort();
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<NonceAead>> NewNonceAead(
    AeadAlgorithm algorithm, const SecretData& key) {
  if (key.size() != kAeadKeySize) {
    return absl::InvalidArgumentError(absl::StrCat(
        AeadAlgorithmName(algorithm), " needs a ", kAeadKeySize,
        "-byte key, got ", key.size(), " bytes"));
  }
  switch (algorithm) {
    case AeadAlgorithm::kAes256Gcm: {
      static const EVP_CIPHER* cipher = FetchCipher("AES-256-GCM");
      return std::make_unique<EvpNonceAead>(algorithm, cipher, key.Clone());
    }
    case AeadAlgorithm::kChaCha20Poly1305: {
      static const EVP_CIPHER* cipher = FetchCipher("ChaCha20-Poly1305");
      return std::make_unique<EvpNonceAead>(algorithm, cipher, key.Clone());
    }
    case AeadAlgorithm::kXChaCha20Poly1305:
      InitSodiumOnce();
      return std::make_unique<SodiumXChaChaNonceAead>(key.Clone());
  }
  return absl::InvalidArgumentError("unknown AEAD algorithm");
}

absl::StatusOr<std::unique_ptr<NonceAead>> NewAesGcmForSmallRecords(const SecretData& key) {
  return NewAesGcmForSmallRecords(key.span());
}

absl::StatusOr<std::unique_ptr<NonceAead>> NewAesGcmForSmallRecords(
    absl::Span<const uint8_t> key) {
  InitSodiumOnce();
  if (key.size() != kAeadKeySize || crypto_aead_aes256gcm_is_available() == 0) {
    return NewNonceAead(AeadAlgorithm::kAes256Gcm, SecretData::CopyFrom(key));
  }
  return std::make_unique<SodiumAesGcmNonceAead>(key.data());
}

bool SmallRecordAesGcmIsAccelerated() {
  InitSodiumOnce();
  return crypto_aead_aes256gcm_is_available() != 0;
}

}  // namespace internal

namespace {

// The public, randomized AEAD: nonce || ciphertext || tag.
class RandomNonceAead final : public Aead {
 public:
  explicit RandomNonceAead(std::unique_ptr<internal::NonceAead> inner)
      : inner_(std::move(inner)) {}

  absl::StatusOr<std::string> Encrypt(absl::string_view plaintext,
                                      absl::string_view aad) const override {
    const size_t nonce_size = inner_->nonce_size();
    std::string out(nonce_size + plaintext.size() + kAeadTagSize, '\0');
    auto* bytes = reinterpret_cast<uint8_t*>(out.data());
    KW_RETURN_IF_ERROR(FillRandom({bytes, nonce_size}));
    KW_RETURN_IF_ERROR(inner_->Seal(
        absl::string_view(out.data(), nonce_size), plaintext, aad,
        {bytes + nonce_size, plaintext.size() + kAeadTagSize}));
    return out;
  }

  absl::StatusOr<SecretData> Decrypt(absl::string_view ciphertext,
                                     absl::string_view aad) const override {
    const size_t nonce_size = inner_->nonce_size();
    if (ciphertext.size() < nonce_size + kAeadTagSize) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ciphertext too short: ", ciphertext.size(), " bytes, at least ",
          nonce_size + kAeadTagSize, " expected (nonce and tag)"));
    }
    SecretData plaintext(ciphertext.size() - nonce_size - kAeadTagSize);
    KW_RETURN_IF_ERROR(inner_->Open(ciphertext.substr(0, nonce_size),
                                    ciphertext.substr(nonce_size), aad,
                                    plaintext.mutable_span()));
    return plaintext;
  }

  AeadAlgorithm algorithm() const override { return inner_->algorithm(); }

 private:
  const std::unique_ptr<internal::NonceAead> inner_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Aead>> NewAead(AeadAlgorithm algorithm,
                                              const SecretData& key) {
  KW_ASSIGN_OR_RETURN(auto inner, internal::NewNonceAead(algorithm, key));
  return std::make_unique<RandomNonceAead>(std::move(inner));
}

}  // namespace keyward::crypto
