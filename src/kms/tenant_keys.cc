// The tenant layer's keys (kms/tenant_keys.h).
#include "kms/tenant_keys.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/status_macros.h"
#include "keyward/errors.h"
#include "kms/data_key_blob.h"
#include "metrics/metrics.h"

namespace keyward::kms {
namespace {

constexpr char kIdKeyName[] = "tenant-id-hmac-key";
constexpr size_t kTenantKeySize = 32;

void CountCache(bool hit) {
  static auto& hits = metrics::Global()
                          .CounterFamily("keyward_tenant_key_cache_hits_total",
                                         "Tenant key uses served from the unsealed tenant key "
                                         "cache.")
                          .With({});
  static auto& misses = metrics::Global()
                            .CounterFamily("keyward_tenant_key_cache_misses_total",
                                           "Tenant key uses that read the key store and unsealed "
                                           "through the HSM.")
                            .With({});
  (hit ? hits : misses).Inc();
}

void CountMade() {
  static auto& made = metrics::Global()
                          .CounterFamily("keyward_tenant_keys_created_total",
                                         "Tenant keys made (first data key for a tenant under "
                                         "a key).")
                          .With({});
  made.Inc();
}

// The caller sent the tenant: the message names the key, when and by whom,
// never the tenant itself (error messages reach keywardd's log).
absl::Status TenantErased(absl::string_view key_name, const keystore::TenantKeyRecord& r) {
  return MakeError(
      absl::StatusCode::kFailedPrecondition, ErrorCode::kTenantErased,
      absl::StrCat("the tenant named by ", kTenantContextKey,
                   " in the encryption context was erased from key ", key_name, " on ",
                   absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", *r.erased, absl::UTCTimeZone()),
                   " by ", r.erased_by, ": its data can no longer be decrypted"));
}

TenantKeyStatus StatusOf(const std::optional<keystore::TenantKeyRecord>& r) {
  TenantKeyStatus s;
  if (!r) return s;
  s.state = r->is_erased() ? TenantKeyState::kErased : TenantKeyState::kActive;
  s.created = r->created;
  s.erased = r->erased;
  s.erased_by = r->erased_by;
  return s;
}

}  // namespace

TenantKeys::TenantKeys(std::shared_ptr<keystore::KeyStore> store,
                       std::shared_ptr<hsm::RootOfTrust> root, std::string environment,
                       Clock* clock, size_t max_cached)
    : store_(std::move(store)),
      root_(std::move(root)),
      environment_(std::move(environment)),
      clock_(clock),
      max_cached_(std::max<size_t>(1, max_cached)) {}

absl::StatusOr<std::shared_ptr<const crypto::HmacSha256>> TenantKeys::IdKey() {
  std::lock_guard<std::mutex> lock(id_mu_);
  if (id_key_ != nullptr) return id_key_;
  // Random, sealed by the root key, the same for every replica and restart:
  // made once, by whichever keywardd needs it first.
  const std::string aad = absl::StrCat("keyward tenant id hmac v1|", environment_);
  for (int attempt = 0; attempt < 2; ++attempt) {
    KW_ASSIGN_OR_RETURN(std::optional<std::string> sealed, store_->GetSealedSecret(kIdKeyName));
    std::optional<SecretData> material;
    if (sealed) {
      KW_ASSIGN_OR_RETURN(material, root_->Unseal(*sealed, aad));
    } else {
      KW_ASSIGN_OR_RETURN(SecretData fresh, root_->GenerateRandom(32));
      KW_ASSIGN_OR_RETURN(std::string new_sealed, root_->Seal(fresh, aad));
      absl::Status put = store_->PutSealedSecret(kIdKeyName, new_sealed);
      if (absl::IsAlreadyExists(put)) continue;  // another keywardd made it first
      KW_RETURN_IF_ERROR(put);
      material = std::move(fresh);
    }
    KW_ASSIGN_OR_RETURN(std::unique_ptr<crypto::HmacSha256> hmac,
                        crypto::HmacSha256::New(*material));
    id_key_ = std::move(hmac);
    return id_key_;
  }
  return absl::InternalError("cannot settle the tenant id key");
}

absl::StatusOr<std::string> TenantKeys::StoreId(absl::string_view tenant) {
  KW_ASSIGN_OR_RETURN(std::shared_ptr<const crypto::HmacSha256> hmac, IdKey());
  return hmac->ComputeMac(tenant);
}

std::shared_ptr<const crypto::Aead> TenantKeys::Cached(const CacheKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

void TenantKeys::Remember(const CacheKey& key, std::shared_ptr<const crypto::Aead> aead,
                          uint64_t epoch) {
  std::lock_guard<std::mutex> lock(mu_);
  if (epoch != epoch_ || index_.contains(key)) return;
  lru_.emplace_front(key, std::move(aead));
  index_[key] = lru_.begin();
  while (lru_.size() > max_cached_) {
    // The Aead's key is wiped when its last user lets go of it.
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

absl::StatusOr<std::shared_ptr<const crypto::Aead>> TenantKeys::Get(absl::string_view key_name,
                                                                    absl::string_view tenant,
                                                                    bool make) {
  KW_ASSIGN_OR_RETURN(std::string id, StoreId(tenant));
  CacheKey cache_key{std::string(key_name), id};
  if (auto hit = Cached(cache_key)) {
    CountCache(true);
    return hit;
  }
  CountCache(false);
  uint64_t epoch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    epoch = epoch_;
  }
  const std::string aad = TenantKeyAad(environment_, key_name, tenant);
  for (int attempt = 0; attempt < 2; ++attempt) {
    KW_ASSIGN_OR_RETURN(std::optional<keystore::TenantKeyRecord> record,
                        store_->GetTenantKey(key_name, id));
    std::optional<SecretData> material;
    if (record) {
      if (record->is_erased()) return TenantErased(key_name, *record);
      KW_ASSIGN_OR_RETURN(material, root_->Unseal(record->sealed, aad));
    } else if (!make) {
      // Only asked for blobs whose KEK seal proved they were made here: the
      // store lost the row.
      return absl::NotFoundError(absl::StrCat(
          "key ", key_name, " has no key for the tenant named by ", kTenantContextKey,
          " in the encryption context, although its data key was made here: the key store "
          "may have been restored from a backup older than the tenant's first data key"));
    } else {
      KW_ASSIGN_OR_RETURN(SecretData fresh, root_->GenerateRandom(kTenantKeySize));
      keystore::TenantKeyRecord r;
      r.key_name = std::string(key_name);
      r.tenant = id;
      KW_ASSIGN_OR_RETURN(r.sealed, root_->Seal(fresh, aad));
      r.created = clock_->Now();
      absl::Status put = store_->PutTenantKey(r);
      // Another keywardd made one first, or the tenant was erased meanwhile:
      // read again and take what the store holds.
      if (absl::IsAlreadyExists(put)) continue;
      KW_RETURN_IF_ERROR(put);
      CountMade();
      material = std::move(fresh);
    }
    if (material->size() != kTenantKeySize) {
      return absl::DataLossError(absl::StrCat("a tenant key of key ", key_name,
                                              " in the key store has the wrong size"));
    }
    KW_ASSIGN_OR_RETURN(std::unique_ptr<crypto::Aead> aead,
                        crypto::NewAead(crypto::AeadAlgorithm::kAes256Gcm, *material));
    std::shared_ptr<const crypto::Aead> shared = std::move(aead);
    Remember(cache_key, shared, epoch);
    return shared;
  }
  return absl::AbortedError(absl::StrCat(
      "the tenant's key under key ", key_name, " is being changed concurrently; try again"));
}

absl::StatusOr<std::shared_ptr<const crypto::Aead>> TenantKeys::ForSeal(
    absl::string_view key_name, absl::string_view tenant) {
  return Get(key_name, tenant, /*make=*/true);
}

absl::StatusOr<std::shared_ptr<const crypto::Aead>> TenantKeys::ForUnseal(
    absl::string_view key_name, absl::string_view tenant) {
  return Get(key_name, tenant, /*make=*/false);
}

absl::StatusOr<TenantKeyStatus> TenantKeys::Status(absl::string_view key_name,
                                                   absl::string_view tenant) {
  KW_ASSIGN_OR_RETURN(std::string id, StoreId(tenant));
  KW_ASSIGN_OR_RETURN(std::optional<keystore::TenantKeyRecord> record,
                      store_->GetTenantKey(key_name, id));
  return StatusOf(record);
}

absl::StatusOr<TenantErasure> TenantKeys::Erase(absl::string_view key_name,
                                                absl::string_view tenant,
                                                absl::string_view by) {
  KW_ASSIGN_OR_RETURN(std::string id, StoreId(tenant));
  const absl::Time now = clock_->Now();
  auto before = store_->EraseTenantKey(key_name, id, now, by);
  // Also when the store failed: the erasure may have committed.
  Forget(key_name, id);
  if (!before.ok()) return before.status();
  TenantErasure out;
  const TenantKeyStatus was = StatusOf(*before);
  out.state_before = was.state;
  if (was.state == TenantKeyState::kErased) {
    out.status = was;
  } else {
    out.status.state = TenantKeyState::kErased;
    out.status.created = was.created;
    out.status.erased = now;
    out.status.erased_by = std::string(by);
  }
  return out;
}

void TenantKeys::Forget(absl::string_view key_name, absl::string_view store_id) {
  std::lock_guard<std::mutex> lock(mu_);
  ++epoch_;  // a lookup that read the store before now does not cache its key
  for (auto it = lru_.begin(); it != lru_.end();) {
    const CacheKey& k = it->first;
    const bool match = key_name.empty() || (k.first == key_name &&
                                            (store_id.empty() || k.second == store_id));
    if (match) {
      index_.erase(k);
      it = lru_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace keyward::kms
