#include "crypto/random.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <pthread.h>

#include <atomic>
#include <climits>
#include <cstring>

#include "base/status_macros.h"

namespace keyward::crypto {

absl::Status FillRandom(absl::Span<uint8_t> out) {
  // RAND_priv_bytes takes an int; fill large buffers in chunks.
  size_t done = 0;
  while (done < out.size()) {
    size_t chunk = std::min<size_t>(out.size() - done, 1 << 20);
    if (RAND_priv_bytes(out.data() + done, static_cast<int>(chunk)) != 1) {
      OPENSSL_cleanse(out.data(), out.size());
      return absl::InternalError(
          "the random number generator failed (OpenSSL DRBG could not be "
          "seeded from the kernel); no output was produced");
    }
    done += chunk;
  }
  return absl::OkStatus();
}

absl::StatusOr<SecretData> GenerateKey(size_t size) {
  SecretData key(size);
  KW_RETURN_IF_ERROR(FillRandom(key.mutable_span()));
  return key;
}

namespace {

// Non-secret random bytes (message ids, nonces) are handed out from a small
// per-thread pool refilled from the same DRBG: one DRBG call costs as much
// as the rest of encrypting a small record.  A forked child must never reuse
// its parent's pool (same message ids under a shared cached data key would
// repeat nonces), so fork bumps a generation that invalidates every pool.
constexpr size_t kPoolSize = 4096;
constexpr size_t kPoolMaxRequest = 256;
std::atomic<uint64_t> fork_generation{0};

struct RandomPool {
  uint8_t bytes[kPoolSize];
  size_t used = kPoolSize;
  uint64_t generation = 0;
  ~RandomPool() { OPENSSL_cleanse(bytes, sizeof(bytes)); }
};
thread_local RandomPool pool;

void RegisterForkHandler() {
  static const bool registered = [] {
    ::pthread_atfork(nullptr, nullptr,
                     [] { fork_generation.fetch_add(1); });
    return true;
  }();
  (void)registered;
}

}  // namespace

absl::Status FillPublicRandom(absl::Span<uint8_t> out) {
  const size_t size = out.size();
  if (size > kPoolMaxRequest) return FillRandom(out);
  RegisterForkHandler();
  const uint64_t generation = fork_generation.load(std::memory_order_relaxed);
  if (pool.generation != generation || kPoolSize - pool.used < size) {
    KW_RETURN_IF_ERROR(FillRandom({pool.bytes, kPoolSize}));
    pool.used = 0;
    pool.generation = generation;
  }
  std::memcpy(out.data(), pool.bytes + pool.used, size);
  // Bytes handed out are erased from the pool so they cannot be handed out
  // twice or read back later.
  OPENSSL_cleanse(pool.bytes + pool.used, size);
  pool.used += size;
  return absl::OkStatus();
}

absl::StatusOr<std::string> RandomBytes(size_t size) {
  std::string out(size, '\0');
  KW_RETURN_IF_ERROR(FillPublicRandom({reinterpret_cast<uint8_t*>(out.data()), size}));
  return out;
}

}  // namespace keyward::crypto
