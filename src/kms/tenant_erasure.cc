// KeyService's tenant erasure: where a tenant stands under a key, and
// erasing its key (crypto-shredding its data keys).
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "format/header.h"
#include "kms/key_service.h"

namespace keyward::kms {
namespace {

// The tenant as data keys carry it: a non-empty encryption context value.
absl::Status CheckTenant(absl::string_view tenant) {
  if (tenant.empty()) {
    return absl::InvalidArgumentError("name the tenant to erase: it cannot be empty");
  }
  return format::ValidateContext({{kTenantContextKey, std::string(tenant)}});
}

}  // namespace

absl::StatusOr<TenantKeyStatus> KeyService::GetTenantStatus(absl::string_view name,
                                                            absl::string_view tenant) {
  KW_RETURN_IF_ERROR(CheckTenant(tenant));
  KW_ASSIGN_OR_RETURN(std::shared_ptr<const KeyCache::CachedKey> cached, cache_.Lookup(name));
  return tenants_.Status(cached->key.name, tenant);
}

absl::StatusOr<TenantErasure> KeyService::EraseTenant(absl::string_view name,
                                                      absl::string_view tenant,
                                                      absl::string_view by) {
  KW_RETURN_IF_ERROR(CheckTenant(tenant));
  KW_ASSIGN_OR_RETURN(std::shared_ptr<const KeyCache::CachedKey> cached, cache_.Lookup(name));
  KW_ASSIGN_OR_RETURN(TenantErasure erasure, tenants_.Erase(cached->key.name, tenant, by));
  if (erasure.state_before == TenantKeyState::kActive || scrub_owed_.load()) {
    // The sealed tenant key was overwritten in the database; its older
    // copies in the write-ahead log go now, or the root key could still
    // unseal them from the file.
    absl::Status scrubbed = store_->Scrub();
    scrub_owed_.store(!scrubbed.ok());
    if (!scrubbed.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "the tenant's key under key ", cached->key.name,
          " was erased, but the key store could not scrub its files yet (", scrubbed.message(),
          "); erase again or wait for the next destruction run to finish the scrub"));
    }
  }
  return erasure;
}

}  // namespace keyward::kms
