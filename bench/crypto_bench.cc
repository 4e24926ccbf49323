// Throughput of the crypto core against raw OpenSSL EVP in the same run.
// Run: build/release/bench/crypto_bench  (or `make bench`)
#include <openssl/evp.h>

#include <string>

#include "benchmark/benchmark.h"
#include "crypto/aead.h"
#include "crypto/deterministic_aead.h"
#include "crypto/hkdf.h"
#include "crypto/internal/nonce_aead.h"
#include "crypto/random.h"

namespace keyward::crypto {
namespace {

void BM_AeadEncrypt(benchmark::State& state, AeadAlgorithm algorithm) {
  auto key = GenerateKey(kAeadKeySize);
  auto aead = NewAead(algorithm, *key);
  std::string plaintext(state.range(0), 'p');
  for (auto _ : state) {
    auto ct = (*aead)->Encrypt(plaintext, "");
    if (!ct.ok()) {
      state.SkipWithError("encrypt failed");
      break;
    }
    benchmark::DoNotOptimize(ct);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK_CAPTURE(BM_AeadEncrypt, aes256gcm, AeadAlgorithm::kAes256Gcm)
    ->Arg(1024)->Arg(16384);
BENCHMARK_CAPTURE(BM_AeadEncrypt, chacha20poly1305,
                  AeadAlgorithm::kChaCha20Poly1305)->Arg(1024)->Arg(16384);
BENCHMARK_CAPTURE(BM_AeadEncrypt, xchacha20poly1305,
                  AeadAlgorithm::kXChaCha20Poly1305)->Arg(1024)->Arg(16384);

// Reference: one EVP context keyed once, only the IV changes per message.
void BM_RawEvpAes256Gcm(benchmark::State& state) {
  unsigned char key[32] = {1};
  unsigned char iv[12] = {0};
  std::string plaintext(state.range(0), 'p');
  std::string out(plaintext.size() + 16, '\0');
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key, nullptr);
  for (auto _ : state) {
    int len = 0;
    ++iv[0];
    EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, iv);
    EVP_EncryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &len,
                      reinterpret_cast<const unsigned char*>(plaintext.data()),
                      static_cast<int>(plaintext.size()));
    EVP_EncryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()) + len,
                        &len);
    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16,
                        out.data() + plaintext.size());
    benchmark::DoNotOptimize(out);
  }
  EVP_CIPHER_CTX_free(ctx);
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_RawEvpAes256Gcm)->Arg(1024)->Arg(16384);

// The per-message fixed costs of the message format.
void BM_HkdfExpand64(benchmark::State& state) {
  SecretData key = SecretData::CopyFrom(std::string(32, 'k'));
  std::string info(52, 'i');
  for (auto _ : state) {
    auto okm = HkdfExpand(HashFunction::kSha256, key.AsStringView(), info, 64);
    if (!okm.ok()) {
      state.SkipWithError("HKDF failed");
      break;
    }
    benchmark::DoNotOptimize(okm);
  }
}
BENCHMARK(BM_HkdfExpand64);

// The same expansion from an expander keyed once per data key (what the
// SDK's encrypt-side cache keeps beside each data key).
void BM_HkdfSha256Expander64(benchmark::State& state) {
  auto expander = HkdfSha256Expander::New(std::string(32, 'k'));
  std::string info(52, 'i');
  SecretData okm(64);
  for (auto _ : state) {
    if (!(*expander)->Expand(info, okm.mutable_span()).ok()) {
      state.SkipWithError("HKDF failed");
      break;
    }
    benchmark::DoNotOptimize(okm.data());
  }
}
BENCHMARK(BM_HkdfSha256Expander64);

void BM_RandomBytes32(benchmark::State& state) {
  for (auto _ : state) {
    auto id = RandomBytes(32);
    benchmark::DoNotOptimize(id);
  }
}
BENCHMARK(BM_RandomBytes32);

void BM_NewNonceAead(benchmark::State& state) {
  SecretData key = SecretData::CopyFrom(std::string(32, 'k'));
  for (auto _ : state) {
    auto aead = internal::NewNonceAead(AeadAlgorithm::kAes256Gcm, key);
    benchmark::DoNotOptimize(aead);
  }
}
BENCHMARK(BM_NewNonceAead);

void BM_Seal(benchmark::State& state) {
  SecretData key = SecretData::CopyFrom(std::string(32, 'k'));
  auto aead = *internal::NewNonceAead(AeadAlgorithm::kAes256Gcm, key);
  std::string plaintext(state.range(0), 'p'), nonce(12, 'n'), aad(250, 'h');
  std::string out(plaintext.size() + 16, '\0');
  for (auto _ : state) {
    if (!aead->Seal(nonce, plaintext, aad,
                    {reinterpret_cast<uint8_t*>(out.data()), out.size()})
             .ok()) {
      state.SkipWithError("seal failed");
      break;
    }
  }
}
BENCHMARK(BM_Seal)->Arg(0)->Arg(1024);

}  // namespace
}  // namespace keyward::crypto


namespace keyward::crypto {
namespace {

// Keying a fresh AEAD and sealing 1 KiB: what a per-message key costs over
// BM_Seal/1024 (a context keyed once).
void BM_FreshKeySeal1KiB(benchmark::State& state) {
  SecretData key = SecretData::CopyFrom(std::string(32, 'k'));
  std::string plaintext(1024, 'p'), nonce(12, 'n');
  std::string out(plaintext.size() + 16, '\0');
  for (auto _ : state) {
    auto aead = internal::NewNonceAead(AeadAlgorithm::kAes256Gcm, key);
    if (!aead.ok() ||
        !(*aead)->Seal(nonce, plaintext, "aad",
                       {reinterpret_cast<uint8_t*>(out.data()), out.size()})
             .ok()) {
      state.SkipWithError("seal failed");
      break;
    }
  }
}
BENCHMARK(BM_FreshKeySeal1KiB);

// AES-256-SIV (S2V over OpenSSL's CMAC, then AES-CTR) against OpenSSL 3.0's
// own SIV cipher in the same run, on the field-sized inputs it is used for.
void BM_DeterministicEncrypt(benchmark::State& state) {
  auto daead = *DeterministicAead::New(SecretData::CopyFrom(std::string(64, 'k')));
  std::string plaintext(state.range(0), 'p');
  for (auto _ : state) {
    auto ct = daead->EncryptDeterministically(plaintext, "dataset/table/column");
    if (!ct.ok()) {
      state.SkipWithError("encrypt failed");
      break;
    }
    benchmark::DoNotOptimize(ct);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_DeterministicEncrypt)->Arg(0)->Arg(24)->Arg(1024);

// Reference: a fresh EVP AES-256-SIV context per message (OpenSSL's SIV
// cannot be re-keyed cheaply or process an empty plaintext).
void BM_RawEvpAes256Siv(benchmark::State& state) {
  unsigned char key[64] = {1};
  std::string plaintext(state.range(0), 'p'), aad("dataset/table/column");
  std::string out(plaintext.size() + 16, '\0');
  EVP_CIPHER* siv = EVP_CIPHER_fetch(nullptr, "AES-256-SIV", nullptr);
  for (auto _ : state) {
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    int len = 0;
    auto* o = reinterpret_cast<unsigned char*>(out.data());
    EVP_EncryptInit_ex2(ctx, siv, key, nullptr, nullptr);
    EVP_EncryptUpdate(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                      static_cast<int>(aad.size()));
    EVP_EncryptUpdate(ctx, o + 16, &len,
                      reinterpret_cast<const unsigned char*>(plaintext.data()),
                      static_cast<int>(plaintext.size()));
    EVP_EncryptFinal_ex(ctx, o + 16 + len, &len);
    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, o);
    EVP_CIPHER_CTX_free(ctx);
    benchmark::DoNotOptimize(out);
  }
  EVP_CIPHER_free(siv);
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_RawEvpAes256Siv)->Arg(24)->Arg(1024);

}  // namespace
}  // namespace keyward::crypto

BENCHMARK_MAIN();
