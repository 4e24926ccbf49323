// One blind index value (IndexText + ApplyTransforms [trim, lowercase] +
// IndexHasher::Value) against a raw one-shot HMAC-SHA-256 of the same
// 24-byte input (OpenSSL HMAC() with the key), measured in the same run.
// Target: at least 0.5x the raw HMAC's throughput.  The ratio is printed
// as the counter `x_raw_hmac` and as a last line.
// Run: build/release/bench/blind_index_bench  (or scripts/run-bench)
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <time.h>

#include <cstdio>
#include <string>

#include "benchmark/benchmark.h"
#include "fields/index_value.h"

namespace keyward::fields {
namespace {

const std::string kKey(32, '\x5a');
const std::string kEmail = " Alice.Smith@Example.COM";  // 24 bytes
static_assert(sizeof(" Alice.Smith@Example.COM") - 1 == 24);

// CPU nanoseconds per operation of the last (reported) run of each benchmark.
double raw_hmac_ns = 0;
double blind_index_ns = 0;

// Thread CPU time, like Google Benchmark's items_per_second: the machine
// may be shared, and wall time would count the other processes.
double ThreadCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

template <typename Fn>
double TimeLoop(benchmark::State& state, Fn fn) {
  const double start = ThreadCpuNs();
  for (auto _ : state) fn();
  const double elapsed = ThreadCpuNs() - start;
  state.SetItemsProcessed(state.iterations());
  return elapsed / static_cast<double>(state.iterations());
}

// Reference: OpenSSL's one-shot HMAC(), keyed on every call.
void BM_RawHmacSha256(benchmark::State& state) {
  unsigned char mac[32];
  unsigned int len = 0;
  raw_hmac_ns = TimeLoop(state, [&] {
    HMAC(EVP_sha256(), kKey.data(), static_cast<int>(kKey.size()),
         reinterpret_cast<const unsigned char*>(kEmail.data()), kEmail.size(), mac, &len);
    benchmark::DoNotOptimize(mac);
  });
}
BENCHMARK(BM_RawHmacSha256);

void BM_BlindIndexValue(benchmark::State& state) {
  auto hasher = IndexHasher::New(SecretData::CopyFrom(kKey), 24);
  if (!hasher.ok()) {
    state.SkipWithError("IndexHasher::New failed");
    return;
  }
  const std::vector<IndexTransform> chain = {{IndexTransform::Kind::kTrim},
                                             {IndexTransform::Kind::kLowercase}};
  const FieldValue value = kEmail;
  bool ok = true;
  blind_index_ns = TimeLoop(state, [&] {
    absl::StatusOr<std::string> text = IndexText(value);
    absl::StatusOr<std::string> part =
        text.ok() ? ApplyTransforms(chain, *std::move(text)) : text;
    if (!part.ok()) {
      ok = false;
      return;
    }
    benchmark::DoNotOptimize((*hasher)->Value({*part}));
  });
  if (!ok) state.SkipWithError("transform failed");
  if (raw_hmac_ns > 0) state.counters["x_raw_hmac"] = raw_hmac_ns / blind_index_ns;
}
BENCHMARK(BM_BlindIndexValue);

}  // namespace
}  // namespace keyward::fields

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  using keyward::fields::blind_index_ns;
  using keyward::fields::raw_hmac_ns;
  if (raw_hmac_ns > 0 && blind_index_ns > 0) {
    std::printf(
        "blind index value: %.0f CPU ns, raw HMAC-SHA-256: %.0f CPU ns, throughput ratio %.2fx "
        "(target >= 0.50x)\n",
        blind_index_ns, raw_hmac_ns, raw_hmac_ns / blind_index_ns);
  }
  return 0;
}
