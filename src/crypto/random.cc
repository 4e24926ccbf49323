#include "crypto/random.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <climits>

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

absl::StatusOr<std::string> RandomBytes(size_t size) {
  std::string out(size, '\0');
  KW_RETURN_IF_ERROR(FillRandom(absl::Span<uint8_t>(
      reinterpret_cast<uint8_t*>(out.data()), out.size())));
  return out;
}

}  // namespace keyward::crypto
