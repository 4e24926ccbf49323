// The key and KEK cache of KeyService (kms/key_cache.h).
#include "kms/key_cache.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kms/data_key_blob.h"
#include "kms/version_errors.h"
#include "metrics/metrics.h"

namespace keyward::kms {
namespace {

using keystore::KekProtection;
using keystore::Key;
using keystore::KeyVersion;
using keystore::VersionState;

void CountKekCache(bool hit) {
  static auto& hits = metrics::Global()
                          .CounterFamily("keyward_kek_cache_hits_total",
                                         "KEK uses served from the unwrapped KEK cache.")
                          .With({});
  static auto& misses = metrics::Global()
                            .CounterFamily("keyward_kek_cache_misses_total",
                                           "KEK uses that had to unseal the KEK through the HSM.")
                            .With({});
  (hit ? hits : misses).Inc();
}

std::shared_ptr<KeyCache::VersionKek> NewKek(const KeyVersion& v) {
  auto kek = std::make_shared<KeyCache::VersionKek>();
  kek->protection = v.protection;
  kek->sealed_kek = v.sealed_kek;
  kek->hsm_key_id = v.hsm_key_id;
  return kek;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const KeyCache::CachedKey>> KeyCache::Lookup(
    absl::string_view name) {
  uint64_t epoch = 0;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    auto it = keys_.find(name);
    if (it != keys_.end()) return it->second;
    epoch = epoch_;
  }
  KW_ASSIGN_OR_RETURN(Key key, store_->GetKey(name));
  auto cached = std::make_shared<CachedKey>();
  for (const KeyVersion& v : key.versions) cached->keks[v.version] = NewKek(v);
  cached->key = std::move(key);
  std::unique_lock<std::shared_mutex> lock(mu_);
  // A change notification arrived while we read: what we read may predate
  // it, and Refresh skipped the name (not cached yet).  Serve it for this
  // call only; the next Lookup reads the store again.
  if (epoch_ != epoch) return std::shared_ptr<const CachedKey>(std::move(cached));
  auto [it, inserted] = keys_.emplace(cached->key.name, cached);
  if (!inserted && it->second->key.revision < cached->key.revision) {
    it->second = cached;
  }
  return it->second;
}

absl::StatusOr<std::shared_ptr<const KeyCache::CachedKey>> KeyCache::LookupVersion(
    absl::string_view name, uint32_t version) {
  KW_ASSIGN_OR_RETURN(std::shared_ptr<const CachedKey> cached, Lookup(name));
  if (cached->key.FindVersion(version) != nullptr) return cached;
  Refresh(name);
  return Lookup(name);
}

void KeyCache::Install(absl::string_view name, const Key& key) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  std::shared_ptr<const CachedKey> old;
  if (auto it = keys_.find(name); it != keys_.end()) old = it->second;
  // Refreshes after another replica's change may arrive out of order.
  if (old && old->key.revision > key.revision) return;
  auto fresh = std::make_shared<CachedKey>();
  for (const KeyVersion& v : key.versions) {
    std::shared_ptr<VersionKek> kek;
    if (old) {
      auto it = old->keks.find(v.version);
      if (it != old->keks.end() && it->second->sealed_kek == v.sealed_kek &&
          it->second->hsm_key_id == v.hsm_key_id &&
          v.state != VersionState::kDestroyed) {
        kek = it->second;
      }
    }
    if (!kek) kek = NewKek(v);
    if (!keystore::CanDecrypt(v.state)) {
      std::lock_guard<std::mutex> kek_lock(kek->mu);
      kek->kek.reset();
    }
    fresh->keks[v.version] = std::move(kek);
  }
  fresh->key = key;
  keys_.insert_or_assign(std::string(name), fresh);
}

void KeyCache::Forget(absl::string_view name) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  ++epoch_;
  keys_.erase(name);
}

void KeyCache::Refresh(absl::string_view name) {
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    ++epoch_;
    if (!keys_.contains(name)) return;
  }
  absl::StatusOr<Key> key = store_->GetKey(name);
  if (key.ok()) {
    Install(name, *key);
  } else {
    Forget(name);
  }
}

void KeyCache::RefreshAll() {
  std::vector<std::string> names;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    names.reserve(keys_.size());
    for (const auto& [name, cached] : keys_) names.push_back(name);
  }
  for (const std::string& name : names) Refresh(name);
}

absl::StatusOr<std::shared_ptr<KeyCache::VersionKek>> KeyCache::Kek(const CachedKey& cached,
                                                                    uint32_t version) {
  auto it = cached.keks.find(version);
  if (it == cached.keks.end()) return NoSuchVersion(cached.key.name, version);
  std::shared_ptr<VersionKek> rt = it->second;
  if (rt->protection == KekProtection::kWrappedByRoot) {
    std::lock_guard<std::mutex> lock(rt->mu);
    CountKekCache(rt->kek != nullptr);
    if (rt->kek == nullptr) {
      if (rt->sealed_kek.empty()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "key ", cached.key.name, " version ", version,
            " has no key material (destroyed)"));
      }
      KW_ASSIGN_OR_RETURN(
          SecretData kek,
          root_->Unseal(rt->sealed_kek,
                        KekAad(cached.key.environment, cached.key.name, version)));
      KW_ASSIGN_OR_RETURN(std::unique_ptr<crypto::Aead> aead,
                          crypto::NewAead(crypto::AeadAlgorithm::kAes256Gcm, kek));
      rt->kek = std::move(aead);
    }
  }
  return rt;
}

}  // namespace keyward::kms
