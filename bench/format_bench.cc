// Message format throughput, each figure beside its reference from the same
// run:
//   BM_Encrypt/<size>, BM_Decrypt/<size>  vs  BM_RawEvpAes256Gcm/<size>
//     (64 B to 4 MiB; /1024 is the 1 KiB record figure)
//   BM_StreamEncrypt/<frame size> (in memory) for the frame size sweep
// Run: build/release/bench/format_bench   (or `make bench`)
#include <openssl/evp.h>

#include <string>

#include "benchmark/benchmark.h"
#include "format/encrypt_materials.h"
#include "format/message_keys.h"
#include "keyward/message.h"
#include "keyward/raw_aes_keyring.h"

namespace keyward {
namespace {

struct Fixture {
  Fixture() {
    keyring = std::move(*RawAesKeyring::FromKey(SecretData::CopyFrom(std::string(32, 'k'))));
    generated = std::move(*keyring->GenerateDataKey({{"tenant", "acme"}}));
    materials.key = generated.key;
    materials.context = {{"tenant", "acme"}};
    materials.data_keys = {generated.encrypted};
    materials.data_key = &generated.plaintext;
    // As the SDK's encrypt-side cache keeps beside each data key.
    schedule = std::move(*format::DataKeySchedule::New(generated.plaintext));
    materials.schedule = schedule.get();
    header = std::move(*format::MakeHeaderTemplate(materials));
    materials.header = &header;
  }
  std::unique_ptr<RawAesKeyring> keyring;
  GeneratedDataKey generated;
  std::unique_ptr<format::DataKeySchedule> schedule;
  format::HeaderTemplate header;
  format::EncryptionMaterials materials;
};

// Message sizes for the throughput-against-size sweep (bench/plot.sh).
void Sizes(benchmark::internal::Benchmark* b) {
  for (int64_t size : {64, 1024, 16 << 10, 256 << 10, 4 << 20}) b->Arg(size);
}

// A record encrypted into a complete message with a data key that is already
// unwrapped and cached (the SDK's steady state): fresh message id, key
// schedule, header and tag, frames.  /1024 is the 1 KiB figure.
void BM_Encrypt(benchmark::State& state) {
  Fixture f;
  const std::string plaintext(static_cast<size_t>(state.range(0)), 'p');
  for (auto _ : state) {
    auto message = format::EncryptBytesWithMaterials(f.materials, plaintext);
    if (!message.ok()) {
      state.SkipWithError(std::string(message.status().message()).c_str());
      break;
    }
    benchmark::DoNotOptimize(message);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Encrypt)->Apply(Sizes);

// Decrypting such a message with the data key's keyring.
void BM_Decrypt(benchmark::State& state) {
  Fixture f;
  std::string message;
  {
    const std::string plaintext(static_cast<size_t>(state.range(0)), 'p');
    StringInputStream in(plaintext);
    StringOutputStream out(&message);
    (void)format::EncryptWithMaterials(f.materials, in, out);
  }
  const KeyUnwrapper* keyrings[] = {f.keyring.get()};
  for (auto _ : state) {
    auto pt = DecryptMessage(message, keyrings);
    if (!pt.ok()) {
      state.SkipWithError(std::string(pt.status().message()).c_str());
      break;
    }
    benchmark::DoNotOptimize(pt);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Decrypt)->Apply(Sizes);

// Reference: raw EVP AES-256-GCM on the same sizes, one context keyed once,
// only the IV changing per message.
void BM_RawEvpAes256Gcm(benchmark::State& state) {
  unsigned char key[32] = {1};
  unsigned char iv[12] = {0};
  const std::string plaintext(static_cast<size_t>(state.range(0)), 'p');
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
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_RawEvpAes256Gcm)->Apply(Sizes);

// In-memory streaming of 64 MiB at a range of frame sizes: the sweep that
// chose kDefaultFrameSize.
class NullOutput final : public OutputStream {
 public:
  absl::Status Write(absl::string_view data) override {
    benchmark::DoNotOptimize(data.data());
    return absl::OkStatus();
  }
};

void BM_StreamEncrypt(benchmark::State& state) {
  Fixture f;
  f.materials.frame_size = static_cast<uint32_t>(state.range(0));
  f.materials.header = nullptr;  // made for the default frame size
  std::string plaintext(64 << 20, 'p');
  for (auto _ : state) {
    StringInputStream in(plaintext);
    NullOutput out;
    if (!format::EncryptWithMaterials(f.materials, in, out).ok()) {
      state.SkipWithError("encrypt failed");
      break;
    }
  }
  state.SetBytesProcessed(state.iterations() * plaintext.size());
}
BENCHMARK(BM_StreamEncrypt)
    ->Arg(4 << 10)->Arg(16 << 10)->Arg(64 << 10)->Arg(256 << 10)->Arg(1 << 20)
    ->Unit(benchmark::kMillisecond);

void BM_StreamDecrypt(benchmark::State& state) {
  Fixture f;
  f.materials.frame_size = static_cast<uint32_t>(state.range(0));
  f.materials.header = nullptr;  // made for the default frame size
  std::string plaintext(64 << 20, 'p');
  std::string message;
  {
    StringInputStream in(plaintext);
    StringOutputStream out(&message);
    (void)format::EncryptWithMaterials(f.materials, in, out);
  }
  const KeyUnwrapper* keyrings[] = {f.keyring.get()};
  for (auto _ : state) {
    StringInputStream in(message);
    NullOutput out;
    if (!DecryptStream(in, out, keyrings).ok()) {
      state.SkipWithError("decrypt failed");
      break;
    }
  }
  state.SetBytesProcessed(state.iterations() * plaintext.size());
}
BENCHMARK(BM_StreamDecrypt)
    ->Arg(4 << 10)->Arg(16 << 10)->Arg(64 << 10)->Arg(256 << 10)->Arg(1 << 20)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace keyward

BENCHMARK_MAIN();
