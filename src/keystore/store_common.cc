#include "keystore/store_common.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/status_macros.h"
#include "keyward/errors.h"

namespace keyward::keystore::internal {

absl::Status CheckNewKey(const Key& key, absl::string_view store_environment) {
  KW_RETURN_IF_ERROR(ValidateKey(key));
  if (key.environment != store_environment) {
    return MakeError(absl::StatusCode::kFailedPrecondition,
                     ErrorCode::kEnvironmentMismatch,
                     absl::StrCat("key ", key.name, " is for environment '",
                                  key.environment, "' but this store belongs to '",
                                  store_environment, "'"));
  }
  return absl::OkStatus();
}

absl::Status CheckPageSize(int page_size) {
  if (page_size < 1 || page_size > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("page size must be 1 to 1000, got ", page_size));
  }
  return absl::OkStatus();
}

absl::Status KeyNotFound(absl::string_view name) {
  return absl::NotFoundError(absl::StrCat(
      "no key named '", name, "' (list keys with `keyward key list`)"));
}

absl::Status RevisionConflict(absl::string_view name) {
  return absl::AbortedError(absl::StrCat(
      "key ", name, " was changed concurrently; re-read it and retry"));
}

absl::Status CheckNewTenantKey(const TenantKeyRecord& record) {
  if (record.key_name.empty() || record.tenant.empty() || record.sealed.empty() ||
      !record.created.has_value() || record.is_erased() || !record.erased_by.empty()) {
    return absl::InvalidArgumentError(
        "a new tenant key needs a key name, a tenant, sealed material and a creation time, "
        "and no erasure");
  }
  return absl::OkStatus();
}

absl::Status TenantKeyExists(absl::string_view key_name) {
  return absl::AlreadyExistsError(absl::StrCat(
      "the tenant already has a key or an erasure under key ", key_name));
}

void ForgetSealed(TenantKeyRecord& record) {
  std::fill(record.sealed.begin(), record.sealed.end(), '\0');
  record.sealed.clear();
}

}  // namespace keyward::keystore::internal

namespace keyward::keystore {

absl::StatusOr<Lease> KeyStore::AcquireLease(absl::string_view name, absl::string_view holder,
                                              absl::Duration ttl) {
  if (name.empty() || holder.empty() || ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("a lease needs a name, a holder and a positive duration");
  }
  const absl::Time now = absl::Now();
  std::lock_guard<std::mutex> lock(leases_mu_);
  auto it = leases_.find(name);
  if (it == leases_.end()) {
    it = leases_.emplace(std::string(name), Lease{std::string(name), "", 0, now}).first;
  }
  Lease& lease = it->second;
  if (lease.holder != holder) {
    if (!lease.holder.empty() && lease.expires > now) {
      return absl::FailedPreconditionError(
          absl::StrCat("lease ", name, " is held by ", lease.holder, " until ",
                       absl::FormatTime(absl::RFC3339_sec, lease.expires, absl::UTCTimeZone())));
    }
    lease.holder = std::string(holder);
    ++lease.fencing_token;
  }
  lease.expires = now + ttl;
  return lease;
}

absl::Status KeyStore::ReleaseLease(absl::string_view name, absl::string_view holder) {
  std::lock_guard<std::mutex> lock(leases_mu_);
  auto it = leases_.find(name);
  if (it != leases_.end() && it->second.holder == holder) {
    it->second.holder.clear();
    it->second.expires = absl::Now();
  }
  return absl::OkStatus();
}

}  // namespace keyward::keystore
