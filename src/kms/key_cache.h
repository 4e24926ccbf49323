// KeyCache: keys as this keywardd last read or wrote them, and the KEK
// cache — each version's KEK unsealed through the root of trust on first
// use and kept in memory while the version can decrypt.
//
// Thread-safety: every method is safe to call concurrently.
#ifndef KEYWARD_KMS_KEY_CACHE_H_
#define KEYWARD_KMS_KEY_CACHE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/aead.h"
#include "hsm/root_of_trust.h"
#include "keystore/key_store.h"

namespace keyward::kms {

class KeyCache {
 public:
  // One version's KEK as this process holds it.
  struct VersionKek {
    keystore::KekProtection protection = keystore::KekProtection::kWrappedByRoot;
    std::string sealed_kek;
    std::string hsm_key_id;
    std::mutex mu;
    std::shared_ptr<crypto::Aead> kek;  // GUARDED_BY(mu); wrapped-by-root versions only
  };
  struct CachedKey {
    keystore::Key key;  // as stored, sealed KEKs included
    std::map<uint32_t, std::shared_ptr<VersionKek>> keks;
  };

  KeyCache(std::shared_ptr<keystore::KeyStore> store, std::shared_ptr<hsm::RootOfTrust> root)
      : store_(std::move(store)), root_(std::move(root)) {}

  // The cached key, read from the store when absent.  Errors: the store's.
  [[nodiscard]] absl::StatusOr<std::shared_ptr<const CachedKey>> Lookup(absl::string_view name);
  // Lookup for a caller that needs `version`: when the cached key lacks it
  // (another replica rotated, and its notification is still on the way),
  // the store is read again before the version is called unknown.
  [[nodiscard]] absl::StatusOr<std::shared_ptr<const CachedKey>> LookupVersion(
      absl::string_view name, uint32_t version);
  // Installs `key` as just written to the store under `name`.  Versions
  // whose material did not change keep their unsealed KEK; a version that
  // can no longer decrypt drops its KEK from memory here.
  void Install(absl::string_view name, const keystore::Key& key);
  // Forgets `name`: the next Lookup reads the store.
  void Forget(absl::string_view name);
  // Another replica changed `name` in the store: re-reads it if cached (and
  // installs it unless a newer revision is already there); forgets it when
  // the store cannot be read, so that nothing stale is served.
  void Refresh(absl::string_view name);
  // Refresh of every cached key (changes may have been missed).
  void RefreshAll();
  // The KEK of `version` of `cached`, unsealed now for a wrapped-by-root
  // version not used before.  Errors: kNotFound for an unknown version,
  // kFailedPrecondition for a version without key material (destroyed),
  // the root's errors (kUnavailable).
  [[nodiscard]] absl::StatusOr<std::shared_ptr<VersionKek>> Kek(const CachedKey& cached,
                                                                 uint32_t version);

 private:
  const std::shared_ptr<keystore::KeyStore> store_;
  const std::shared_ptr<hsm::RootOfTrust> root_;
  std::shared_mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const CachedKey>> keys_;  // GUARDED_BY(mu_)
  // Bumped by every Refresh and Forget: a Lookup that read the store before
  // a change it was told about does not cache what it read.
  uint64_t epoch_ = 0;  // GUARDED_BY(mu_)
};

}  // namespace keyward::kms

#endif  // KEYWARD_KMS_KEY_CACHE_H_
