// HMAC-SHA-256 (RFC 2104) keyed once: New computes the key's inner and
// outer SHA-256 states (libsodium's crypto_auth_hmacsha256_state); every
// computation starts from a copy of them, so a MAC of a short input costs
// two SHA-256 compressions and no allocation.  For hot paths inside
// Keyward (blind index values); public code uses crypto/hmac.h.  See
// docs/decisions/0024.
//
// Thread-safety: KeyedHmacSha256 is immutable after New; const methods are
// safe to call concurrently.  A Computation belongs to one thread.
#ifndef KEYWARD_CRYPTO_INTERNAL_KEYED_HMAC_SHA256_H_
#define KEYWARD_CRYPTO_INTERNAL_KEYED_HMAC_SHA256_H_

#include <sodium/crypto_auth_hmacsha256.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "keyward/secret_data.h"

namespace keyward::crypto::internal {

inline constexpr size_t kKeyedHmacSha256Size = 32;
using HmacSha256Tag = std::array<uint8_t, kKeyedHmacSha256Size>;

class KeyedHmacSha256 {
 public:
  // Errors: kInvalidArgument for a key under 16 bytes (kHmacMinKeySize).
  // Keys longer than SHA-256's 64-byte block are hashed first, as RFC 2104
  // says.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<KeyedHmacSha256>> New(
      const SecretData& key);
  ~KeyedHmacSha256();
  KeyedHmacSha256(const KeyedHmacSha256&) = delete;
  KeyedHmacSha256& operator=(const KeyedHmacSha256&) = delete;

  // One MAC in progress over the concatenation of its Update calls.  Its
  // state (key-dependent) is wiped when it is destroyed.
  class Computation {
   public:
    ~Computation();
    Computation(const Computation&) = delete;
    Computation& operator=(const Computation&) = delete;
    void Update(absl::string_view data);
    // The full 32-byte tag.  REQUIRES: called once, last.
    HmacSha256Tag Final();

   private:
    friend class KeyedHmacSha256;
    explicit Computation(const KeyedHmacSha256& mac);
    crypto_auth_hmacsha256_state state_;
  };

  // A computation starting from the keyed state.
  Computation Start() const { return Computation(*this); }
  // The tag of `data`.
  HmacSha256Tag Mac(absl::string_view data) const;
  // True if `tag` (16 to 32 bytes) equals the leftmost tag.size() bytes of
  // the tag of `data`, compared in constant time.  False for other sizes.
  [[nodiscard]] bool Verify(absl::string_view tag, absl::string_view data) const;

 private:
  explicit KeyedHmacSha256(SecretData state) : state_(std::move(state)) {}
  // The keyed crypto_auth_hmacsha256_state, in locked memory.
  const SecretData state_;
};

}  // namespace keyward::crypto::internal

#endif  // KEYWARD_CRYPTO_INTERNAL_KEYED_HMAC_SHA256_H_
