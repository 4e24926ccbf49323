// CachingUnwrapper: remembers the data keys another unwrapper opened, so
// messages that share a data key cost one unwrap (one call to keywardd for
// the KMS).  Used by keyward::Encryptor's decrypt side and by keywardd's
// batch header rewrap.
//
// An entry is found by (provider id, provider info, wrapped key, encryption
// context), each length-prefixed, so no two different inputs share a cache
// key.  It is reused until it is max_age old or has served max_messages
// unwraps; at most max_entries are kept (idle ones are dropped first when
// full).  N concurrent unwraps of the same entry make one call to the inner
// unwrapper (single-flight).  Evicted keys are wiped when the last user
// lets go.  Errors are never cached.
//
// Thread-safe.
#ifndef KEYWARD_CACHING_UNWRAPPER_H_
#define KEYWARD_CACHING_UNWRAPPER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "keyward/keyring.h"

namespace keyward {

struct CacheLimits {
  absl::Duration max_age = absl::Minutes(5);
  uint64_t max_messages = 1'000'000;
  uint64_t max_bytes = uint64_t{1} << 34;  // 16 GiB (encrypt side only)
  size_t max_entries = 4096;
};

// Errors: kInvalidArgument naming the limit that is not above zero.
absl::Status ValidateCacheLimits(const CacheLimits& limits, absl::string_view which);

class CachingUnwrapper final : public KeyUnwrapper {
 public:
  // `on_lookup(hit)` (optional) is called after each unwrap this cache
  // answered or fetched, on the caller's thread.
  CachingUnwrapper(std::shared_ptr<const KeyUnwrapper> inner, CacheLimits limits,
                   std::function<void(bool hit)> on_lookup = nullptr);
  ~CachingUnwrapper() override;

  absl::StatusOr<SecretData> UnwrapDataKey(const EncryptedDataKey& encrypted,
                                           const EncryptionContext& context) const override;
  bool Owns(const EncryptedDataKey& encrypted) const override;

  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }
  // Entries held now: at most limits.max_entries, plus any being used by a
  // concurrent unwrap when the cache filled up.
  size_t entries() const;
  // Wipes and drops every cached key.
  void Clear();

  // The cache key of an entry: each part length-prefixed.
  static std::string CacheKey(const EncryptedDataKey& encrypted,
                              const EncryptionContext& context);

 private:
  struct Cache;
  const std::shared_ptr<const KeyUnwrapper> inner_;
  const std::function<void(bool)> on_lookup_;
  const std::unique_ptr<Cache> cache_;
  mutable std::atomic<uint64_t> hits_{0};
  mutable std::atomic<uint64_t> misses_{0};
};

}  // namespace keyward

#endif  // KEYWARD_CACHING_UNWRAPPER_H_
