// Throughput of the crypto core against raw OpenSSL EVP in the same run.
// Run: build/release/bench/crypto_bench  (or `make bench`)
#include <openssl/evp.h>

#include <string>

#include "benchmark/benchmark.h"
#include "crypto/aead.h"
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

}  // namespace
}  // namespace keyward::crypto

BENCHMARK_MAIN();
