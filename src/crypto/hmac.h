// HMAC-SHA-256 (RFC 2104), with an optional truncated tag of 16..32 bytes.
//
// Thread-safety: const methods, safe to call concurrently.
#ifndef KEYWARD_CRYPTO_HMAC_H_
#define KEYWARD_CRYPTO_HMAC_H_

#include <openssl/types.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "keyward/secret_data.h"

namespace keyward::crypto {

inline constexpr size_t kHmacMinKeySize = 16;
inline constexpr size_t kHmacMinTagSize = 16;
inline constexpr size_t kHmacSha256TagSize = 32;

class HmacSha256 {
 public:
  // Errors: kInvalidArgument for a key under 16 bytes or a tag size outside
  // 16..32.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HmacSha256>> New(
      const SecretData& key, size_t tag_size = kHmacSha256TagSize);

  // The tag of `data`: the leftmost tag_size() bytes of HMAC-SHA-256.
  [[nodiscard]] absl::StatusOr<std::string> ComputeMac(
      absl::string_view data) const;

  // OK if `tag` is the tag of `data`, compared in constant time.
  // Errors: kInvalidArgument ("MAC verification failed") otherwise,
  // including a tag of the wrong length.
  [[nodiscard]] absl::Status VerifyMac(absl::string_view tag,
                                       absl::string_view data) const;

  size_t tag_size() const { return tag_size_; }

  ~HmacSha256();

 private:
  struct FreeCtx {
    void operator()(EVP_MAC_CTX* c) const;  // wipes the key it holds
  };
  using KeyedCtx = std::unique_ptr<EVP_MAC_CTX, FreeCtx>;
  HmacSha256(KeyedCtx keyed, size_t tag_size) : keyed_(std::move(keyed)), tag_size_(tag_size) {}
  const KeyedCtx keyed_;  // keyed, never finalized
  const size_t tag_size_;
};

}  // namespace keyward::crypto

#endif  // KEYWARD_CRYPTO_HMAC_H_
