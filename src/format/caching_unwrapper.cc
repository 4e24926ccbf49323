#include "keyward/caching_unwrapper.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "format/header.h"
#include "format/single_flight_cache.h"
#include "format/wire.h"

namespace keyward {
namespace {

struct UnwrappedEntry {
  SecretData data_key;
  absl::Time created;
  std::atomic<uint64_t> messages{0};
  std::atomic<uint64_t> bytes{0};
};

void AppendPrefixed(std::string* out, absl::string_view part) {
  format::AppendBigEndian(out, part.size(), 4);
  out->append(part.data(), part.size());
}

}  // namespace

absl::Status ValidateCacheLimits(const CacheLimits& limits, absl::string_view which) {
  if (limits.max_age <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(which, ".max_age must be above zero"));
  }
  if (limits.max_messages == 0) {
    return absl::InvalidArgumentError(absl::StrCat(which, ".max_messages must be above zero"));
  }
  if (limits.max_bytes == 0) {
    return absl::InvalidArgumentError(absl::StrCat(which, ".max_bytes must be above zero"));
  }
  if (limits.max_entries == 0) {
    return absl::InvalidArgumentError(absl::StrCat(which, ".max_entries must be above zero"));
  }
  return absl::OkStatus();
}

struct CachingUnwrapper::Cache {
  explicit Cache(CacheLimits limits) : cache(limits) {}
  format::SingleFlightCache<UnwrappedEntry> cache;
};

CachingUnwrapper::CachingUnwrapper(std::shared_ptr<const KeyUnwrapper> inner, CacheLimits limits,
                                   std::function<void(bool)> on_lookup)
    : inner_(std::move(inner)),
      on_lookup_(std::move(on_lookup)),
      cache_(std::make_unique<Cache>(limits)) {}

CachingUnwrapper::~CachingUnwrapper() = default;

std::string CachingUnwrapper::CacheKey(const EncryptedDataKey& encrypted,
                                       const EncryptionContext& context) {
  std::string key;
  AppendPrefixed(&key, encrypted.provider_id);
  AppendPrefixed(&key, encrypted.provider_info);
  AppendPrefixed(&key, encrypted.ciphertext);
  AppendPrefixed(&key, format::SerializeContext(context));
  return key;
}

absl::StatusOr<SecretData> CachingUnwrapper::UnwrapDataKey(
    const EncryptedDataKey& encrypted, const EncryptionContext& context) const {
  if (!inner_->Owns(encrypted)) return absl::NotFoundError("not an entry of this unwrapper");
  bool hit = false;
  KW_ASSIGN_OR_RETURN(
      std::shared_ptr<UnwrappedEntry> entry,
      cache_->cache.Acquire(CacheKey(encrypted, context), 0,
                            [&]() -> absl::StatusOr<std::shared_ptr<UnwrappedEntry>> {
                              KW_ASSIGN_OR_RETURN(SecretData dek,
                                                  inner_->UnwrapDataKey(encrypted, context));
                              auto e = std::make_shared<UnwrappedEntry>();
                              e->data_key = std::move(dek);
                              return e;
                            },
                            &hit));
  ++(hit ? hits_ : misses_);
  if (on_lookup_) on_lookup_(hit);
  return entry->data_key.Clone();
}

bool CachingUnwrapper::Owns(const EncryptedDataKey& encrypted) const {
  return inner_->Owns(encrypted);
}

void CachingUnwrapper::Clear() { cache_->cache.Clear(); }

size_t CachingUnwrapper::entries() const { return cache_->cache.size(); }

}  // namespace keyward
