// SHA-256 and SHA-512 digests.  Thread-safe free functions.
#ifndef KEYWARD_CRYPTO_HASH_H_
#define KEYWARD_CRYPTO_HASH_H_

#include <array>
#include <initializer_list>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace keyward::crypto {

enum class HashFunction : uint8_t { kSha256 = 1, kSha512 = 2 };

inline constexpr size_t kSha256Size = 32;

// SHA-256 of `data`.  Cannot fail short of memory exhaustion, which aborts.
std::array<uint8_t, kSha256Size> Sha256(absl::string_view data);

// SHA-256 of the concatenation of `parts`, without building it.
std::array<uint8_t, kSha256Size> Sha256Concat(
    std::initializer_list<absl::string_view> parts);

// SHA-256 over data given in pieces (a file as it is appended).  Copyable:
// Digest() of a copy leaves the original going on.  Not thread-safe.
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream& other);
  Sha256Stream& operator=(const Sha256Stream& other);
  void Update(absl::string_view data);
  // The digest of everything so far; the stream can go on.
  std::array<uint8_t, kSha256Size> Digest() const;

 private:
  void* ctx_;  // EVP_MD_CTX
};

// Digest length of `hash` in bytes (32 or 64).
size_t HashSize(HashFunction hash);

}  // namespace keyward::crypto

#endif  // KEYWARD_CRYPTO_HASH_H_
