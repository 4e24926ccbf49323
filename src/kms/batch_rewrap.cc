#include "kms/batch_rewrap.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "format/header.h"
#include "keyward/caching_unwrapper.h"
#include "keyward/message.h"
#include "kms/data_key_blob.h"
#include "kms/kms_keyring.h"
#include "metrics/metrics.h"

namespace keyward::kms {
namespace {

constexpr size_t kMaxCached = 1024;

// The batch's data key cache: a window of kMaxCached entries (data keys live
// in the bounded secure heap) for the length of one request.
CacheLimits BatchCacheLimits() {
  CacheLimits limits;
  limits.max_entries = kMaxCached;
  limits.max_age = absl::Hours(1);
  limits.max_messages = ~uint64_t{0};
  return limits;
}

// Unwraps through the service once per distinct (wrapped key, context) and
// remembers the result for the batch, through the SDK's CachingUnwrapper
// (length-prefixed cache keys: a hit stands in for a real unwrap, whose
// context check must not be skipped for a context that only looks the
// same).  `counted`: whether hits and misses go to the data key cache
// metrics (the source side's do; the verifier's would count every data key
// twice).
class CachingUnwrapKeyring final : public KeyUnwrapper {
 public:
  explicit CachingUnwrapKeyring(KeyService* service, bool counted = true)
      : inner_(std::make_shared<LocalKmsKeyring>(service, "", /*reader=*/false)),
        cache_(inner_, BatchCacheLimits(), counted ? &CountLookup : nullptr) {}
  absl::StatusOr<SecretData> UnwrapDataKey(const EncryptedDataKey& edk,
                                           const EncryptionContext& context) const override {
    if (!inner_->Owns(edk)) return absl::NotFoundError("not a kms entry");
    // Only entries of the key the caller authorized (set before each header).
    if (edk.provider_info != expected_key_) return absl::NotFoundError("another key's entry");
    if (auto blob = DecodeBlob(edk.ciphertext); !blob.ok() || blob->key_name != expected_key_) {
      return absl::NotFoundError("another key's entry");
    }
    last_ = CachingUnwrapper::CacheKey(edk, context);
    last_key_name_ = edk.provider_info;
    return cache_.UnwrapDataKey(edk, context);
  }
  bool Owns(const EncryptedDataKey& edk) const override { return inner_->Owns(edk); }
  void set_expected_key(const std::string& key) { expected_key_ = key; }
  // The cache key of the last unwrap (rewrap wraps right after it).
  const std::string& last() const { return last_; }
  // The key that wrapped it (a kms entry names its key).
  const std::string& last_key_name() const { return last_key_name_; }

 private:
  static void CountLookup(bool hit) {
    static auto& hits = metrics::Global()
                            .CounterFamily("keyward_dek_cache_hits_total",
                                           "Batch header rewrap: data keys found in the "
                                           "batch's cache (messages sharing a data key).")
                            .With({});
    static auto& misses = metrics::Global()
                              .CounterFamily("keyward_dek_cache_misses_total",
                                             "Batch header rewrap: data keys unwrapped.")
                              .With({});
    (hit ? hits : misses).Inc();
  }

  const std::shared_ptr<LocalKmsKeyring> inner_;
  CachingUnwrapper cache_;
  mutable std::string last_;
  mutable std::string last_key_name_;
  std::string expected_key_;
};

// Wraps under the primary of the key that wrapped the source entry, once
// per distinct source wrapped key.
class CachingWrapKeyring final : public KeyWrapper {
 public:
  CachingWrapKeyring(KeyService* service, const CachingUnwrapKeyring* source)
      : service_(service), source_(source) {}
  absl::StatusOr<GeneratedDataKey> GenerateDataKey(const EncryptionContext&) const override {
    return absl::UnimplementedError("wrap only");
  }
  absl::StatusOr<WrappedDataKey> WrapDataKey(const SecretData& dek,
                                             const EncryptionContext& context) const override {
    auto it = cache_.find(source_->last());
    if (it != cache_.end()) {
      last_key_ = it->second.key;
      return it->second;
    }
    const std::string& name = source_->last_key_name();
    if (name != expected_key_) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the message's kms entry belongs to key ", name, " but its header names key ",
          expected_key_, "; refusing to rewrap it"));
    }
    auto k = keyrings_.find(name);
    if (k == keyrings_.end()) {
      k = keyrings_.try_emplace(name, service_, name, /*reader=*/false).first;
    }
    KW_ASSIGN_OR_RETURN(WrappedDataKey w, k->second.WrapDataKey(dek, context));
    if (cache_.size() >= kMaxCached) cache_.clear();
    cache_.emplace(source_->last(), w);
    last_key_ = w.key;
    return w;
  }
  // The key reference of the last wrap (the new header's).
  const KeyReference& last_key() const { return last_key_; }
  // The key the next header names (and the caller authorized).
  void set_expected_key(const std::string& key) { expected_key_ = key; }
  bool Owns(const EncryptedDataKey& edk) const override {
    return edk.provider_id == kKmsProviderId;
  }

 private:
  KeyService* const service_;
  const CachingUnwrapKeyring* const source_;
  mutable std::map<std::string, LocalKmsKeyring> keyrings_;
  mutable std::map<std::string, WrappedDataKey> cache_;
  mutable KeyReference last_key_;
  std::string expected_key_;
};

}  // namespace

std::vector<absl::StatusOr<RewrappedHeader>> RewrapHeaders(
    KeyService* service, const std::vector<std::string>& headers,
    const std::vector<bool>& skip, const std::vector<std::string>& keys,
    const RewrapOptions& rewrap_options) {
  std::vector<absl::StatusOr<RewrappedHeader>> out;
  out.reserve(headers.size());
  CachingUnwrapKeyring from(service);
  // Messages sharing a data key share its new entry too (the wrap is
  // cached): each distinct new entry is unwrapped for real once, and every
  // header carrying it is checked against that result.
  CachingUnwrapKeyring verifier(service, /*counted=*/false);
  CachingWrapKeyring to(service, &from);
  const KeyUnwrapper* from_list[] = {&from};
  const KeyWrapper* to_list[] = {&to};
  const KeyUnwrapper* verify_list[] = {&verifier};
  DecryptOptions options;
  options.expected_environment = service->environment();
  options.expected_context = rewrap_options.expected_context;
  for (size_t i = 0; i < headers.size(); ++i) {
    if (i > 0 && rewrap_options.between_headers) rewrap_options.between_headers();
    if (i < skip.size() && skip[i]) {
      out.push_back(absl::CancelledError("skipped"));
      continue;
    }
    out.push_back([&]() -> absl::StatusOr<RewrappedHeader> {
      const std::string& key = i < keys.size() ? keys[i] : std::string();
      from.set_expected_key(key);
      verifier.set_expected_key(key);
      to.set_expected_key(key);
      // Verified before anyone stores it: the new header must open through
      // the version it now names.
      RewrappedHeader result;
      auto rewrapped =
          RewrapMessageVerified(headers[i], from_list, to_list, verify_list, options);
      if (absl::IsInternal(rewrapped.status())) {
        return absl::InternalError(absl::StrCat(rewrapped.status().message(),
                                                "; the message was left as it was"));
      }
      KW_ASSIGN_OR_RETURN(result.header, std::move(rewrapped));
      result.key = to.last_key();
      return result;
    }());
  }
  return out;
}

}  // namespace keyward::kms
