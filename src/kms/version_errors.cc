// Errors that name a key version (kms/version_errors.h).
#include "kms/version_errors.h"

#include "absl/strings/str_cat.h"

namespace keyward::kms {

using keystore::Key;
using keystore::KeyVersion;
using keystore::VersionState;

std::string HumanTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", t, absl::UTCTimeZone());
}

absl::Status VersionNotUsable(const Key& key, const KeyVersion& v) {
  switch (v.state) {
    case VersionState::kDisabled:
      return absl::FailedPreconditionError(absl::StrCat(
          "key ", key.name, " version ", v.version,
          " is disabled; enable it with `keyward key enable-version ",
          key.name, " ", v.version, "` to decrypt data under it"));
    case VersionState::kPendingDestruction:
      return absl::FailedPreconditionError(absl::StrCat(
          "key ", key.name, " version ", v.version,
          " is scheduled for destruction on ",
          v.destroy_after ? HumanTime(*v.destroy_after) : "(unknown)",
          " and refuses to decrypt; cancel with `keyward key cancel-destroy ",
          key.name, " ", v.version, "`"));
    case VersionState::kDestroyed:
      return absl::FailedPreconditionError(absl::StrCat(
          "key ", key.name, " version ", v.version, " was destroyed",
          v.destroyed ? absl::StrCat(" on ", HumanTime(*v.destroyed)) : "",
          "; data under it can no longer be decrypted"));
    default:
      return absl::OkStatus();
  }
}

absl::Status NoSuchVersion(absl::string_view name, uint32_t version) {
  return absl::NotFoundError(
      absl::StrCat("key ", name, " has no version ", version));
}

}  // namespace keyward::kms
