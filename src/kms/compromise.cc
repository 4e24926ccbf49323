// KeyService's compromise response: a version whose KEK may be known to
// someone else stops wrapping at once (a new primary takes over when it was
// the primary) and is marked for good; its data keys still unwrap so that
// the data under it can be re-encrypted, and every such unwrap is flagged
// by the caller (IsCompromised).
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kms/key_service.h"
#include "kms/version_errors.h"

namespace keyward::kms {

using keystore::Key;
using keystore::KeyVersion;
using keystore::VersionState;

absl::StatusOr<CompromiseResult> KeyService::CompromiseVersion(absl::string_view name,
                                                               uint32_t version,
                                                               absl::string_view reason,
                                                               absl::string_view by) {
  if (reason.empty() || reason.size() > kMaxCompromiseReason) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a compromise needs a reason of 1 to ", kMaxCompromiseReason,
        " bytes (an incident id and one line: it is kept with the version and audited)"));
  }
  CompromiseResult result;
  bool rotated = false;
  auto key = Mutate(name, [&](Key& k) -> absl::Status {
    rotated = false;
    result.already = false;
    result.new_primary = 0;
    KeyVersion* v = k.FindVersion(version);
    if (v == nullptr) return NoSuchVersion(name, version);
    if (v->compromise) {
      result.already = true;  // the first declaration stands; nothing changes
      return absl::CancelledError("already compromised");
    }
    if (v->state == VersionState::kDestroyed) {
      return absl::FailedPreconditionError(absl::StrCat(
          "key ", name, " version ", version,
          " is destroyed: its key material is gone, nothing can be wrapped or "
          "unwrapped with it any more, so there is nothing to contain"));
    }
    // A primary being crypto-shredded (pending destruction, the last
    // version) stays so: no new version brings the key back to life.
    if (version == k.primary_version && v->state == VersionState::kEnabled) {
      const uint32_t next = k.versions.back().version + 1;
      KW_ASSIGN_OR_RETURN(KeyVersion fresh, NewVersion(k, next, options_.default_protection));
      k.versions.push_back(std::move(fresh));
      k.primary_version = next;
      v = k.FindVersion(version);  // the push may have moved it
      rotated = true;
      result.new_primary = next;
    }
    if (v->state == VersionState::kEnabled) v->state = VersionState::kDecryptOnly;
    if (v->state_before_destruction == VersionState::kEnabled) {
      v->state_before_destruction = VersionState::kDecryptOnly;
    }
    v->compromise = keystore::Compromise{options_.clock->Now(), std::string(reason),
                                         std::string(by)};
    return absl::OkStatus();
  });
  if (!key.ok()) {
    if (!(result.already && absl::IsCancelled(key.status()))) return key.status();
    KW_ASSIGN_OR_RETURN(result.key, GetKey(name));
  } else {
    result.key = std::move(*key);
  }
  if (rotated) {
    AttachDrillSample(std::string(name));
    KW_ASSIGN_OR_RETURN(result.key, GetKey(name));
  }
  // What still holds data under the version, as the last re-encryption
  // reports (tables, field tables, buckets) say.
  KW_ASSIGN_OR_RETURN(auto reports, store_->ListDataSetReports(name));
  for (keystore::DataSetReport& r : reports) {
    auto it = r.rows_per_version.find(version);
    if (it != r.rows_per_version.end() && it->second > 0) {
      result.data_sets.push_back(std::move(r));
    }
  }
  return result;
}

bool KeyService::IsCompromised(absl::string_view name, uint32_t version) {
  auto cached = cache_.Lookup(name);
  if (!cached.ok()) return false;
  const KeyVersion* v = (*cached)->key.FindVersion(version);
  return v != nullptr && v->compromise.has_value();
}

}  // namespace keyward::kms
