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

// Digest length of `hash` in bytes (32 or 64).
size_t HashSize(HashFunction hash);

}  // namespace keyward::crypto

#endif  // KEYWARD_CRYPTO_HASH_H_
