// TenantKeys: the tenant layer of KeyService (data key blob version 2,
// kms/data_key_blob.h).  Each (key name, tenant) has its own 32-byte key
// from the HSM's RNG, stored only sealed by the HSM root key, with
// associated data TenantKeyAad; erasing it is crypto-shredding of that
// tenant's data keys (docs/decisions/0021).
//
// The key store never holds a tenant id in clear: rows are found by
// HMAC-SHA-256 of the tenant under a service secret ("tenant-id-hmac-key",
// itself sealed by the root key), so a key store backup does not list the
// tenants, erased or not.
//
// Unsealed tenant keys are kept as Aeads in a bounded LRU cache.  An erase
// evicts its entry and bumps an epoch under the cache's lock; a lookup that
// read the store before that epoch does not put its key back, so no tenant
// key outlives its erasure in this process's cache.
//
// Thread-safety: every method is safe to call concurrently.
#ifndef KEYWARD_KMS_TENANT_KEYS_H_
#define KEYWARD_KMS_TENANT_KEYS_H_

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "crypto/aead.h"
#include "crypto/hmac.h"
#include "hsm/root_of_trust.h"
#include "keystore/key_store.h"
#include "kms/clock.h"

namespace keyward::kms {

// Where a tenant's key under one Keyward key stands.
enum class TenantKeyState {
  kNone,    // never used: no key, no erasure
  kActive,  // has a key
  kErased,  // erased (a tombstone: no key can be made for it again)
};

struct TenantKeyStatus {
  TenantKeyState state = TenantKeyState::kNone;
  std::optional<absl::Time> created;  // when its key was made
  std::optional<absl::Time> erased;
  std::string erased_by;
};

// What an erasure found and left.
struct TenantErasure {
  TenantKeyState state_before = TenantKeyState::kNone;
  TenantKeyStatus status;  // after the erasure: kErased, with the first erasure's time and principal
};

class TenantKeys {
 public:
  TenantKeys(std::shared_ptr<keystore::KeyStore> store, std::shared_ptr<hsm::RootOfTrust> root,
             std::string environment, Clock* clock, size_t max_cached);

  // The tenant's key under `key_name`, to seal a data key with; made and
  // stored on first use (a concurrent maker's key wins and is used).
  // Errors: kFailedPrecondition (ErrorCode kTenantErased) when the tenant
  // was erased; the store's and the HSM's.
  [[nodiscard]] absl::StatusOr<std::shared_ptr<const crypto::Aead>> ForSeal(
      absl::string_view key_name, absl::string_view tenant);
  // The same to unseal: never made.  Errors: kTenantErased; kNotFound when
  // the tenant has no key under `key_name` (the store lost it); the store's
  // and the HSM's.
  [[nodiscard]] absl::StatusOr<std::shared_ptr<const crypto::Aead>> ForUnseal(
      absl::string_view key_name, absl::string_view tenant);

  // The tenant's status under `key_name`, changing nothing.
  [[nodiscard]] absl::StatusOr<TenantKeyStatus> Status(absl::string_view key_name,
                                                       absl::string_view tenant);
  // Erases the tenant's key under `key_name` in the store (a tombstone when
  // it had none; an earlier erasure stands) and drops it from the cache.
  // The caller scrubs the store.
  [[nodiscard]] absl::StatusOr<TenantErasure> Erase(absl::string_view key_name,
                                                    absl::string_view tenant,
                                                    absl::string_view by);
  // Another replica changed tenant keys in the store: drops the cached key
  // of the tenant the store knows as `store_id` under `key_name` (every
  // tenant's when `store_id` is empty, every key's when `key_name` is too),
  // so that an erasure made elsewhere is honoured here.
  void Forget(absl::string_view key_name, absl::string_view store_id);

 private:
  using CacheKey = std::pair<std::string, std::string>;  // key name, store id
  using Entry = std::pair<CacheKey, std::shared_ptr<const crypto::Aead>>;

  // How the store knows the tenant: HMAC-SHA-256 of it (32 bytes).
  absl::StatusOr<std::string> StoreId(absl::string_view tenant);
  absl::StatusOr<std::shared_ptr<const crypto::HmacSha256>> IdKey();
  absl::StatusOr<std::shared_ptr<const crypto::Aead>> Get(absl::string_view key_name,
                                                          absl::string_view tenant, bool make);
  std::shared_ptr<const crypto::Aead> Cached(const CacheKey& key);
  // Caches `aead` unless an erase happened since `epoch` was read.
  void Remember(const CacheKey& key, std::shared_ptr<const crypto::Aead> aead, uint64_t epoch);

  const std::shared_ptr<keystore::KeyStore> store_;
  const std::shared_ptr<hsm::RootOfTrust> root_;
  const std::string environment_;
  Clock* const clock_;
  const size_t max_cached_;

  std::mutex id_mu_;
  std::shared_ptr<const crypto::HmacSha256> id_key_;  // GUARDED_BY(id_mu_)

  std::mutex mu_;
  std::list<Entry> lru_;                                          // GUARDED_BY(mu_)
  absl::flat_hash_map<CacheKey, std::list<Entry>::iterator> index_;  // GUARDED_BY(mu_)
  uint64_t epoch_ = 0;                                            // GUARDED_BY(mu_)
};

}  // namespace keyward::kms

#endif  // KEYWARD_KMS_TENANT_KEYS_H_
