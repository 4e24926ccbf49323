// Tenant keys in the PostgreSQL key store: read, create once, erase
// (leaving a tombstone).  The tenant is a bytea, compared byte for byte.
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keystore/postgres_change_feed.h"
#include "keystore/postgres_connection_pool.h"
#include "keystore/postgres_key_store.h"
#include "keystore/store_common.h"
#include "keystore/store_rows.h"

namespace keyward::keystore {
namespace {

constexpr char kSelect[] =
    "SELECT sealed, created_us, erased_us, erased_by FROM keyward_tenant_keys "
    "WHERE key_name = $1 AND tenant = $2";


StoreChange TenantChanged(absl::string_view key_name, absl::string_view tenant) {
  return StoreChange{StoreChange::Kind::kTenantKey, std::string(key_name), std::string(tenant)};
}

}  // namespace

absl::StatusOr<std::optional<TenantKeyRecord>> PostgresKeyStore::GetTenantKey(
    absl::string_view key_name, absl::string_view tenant) {
  std::optional<TenantKeyRecord> out;
  KW_RETURN_IF_ERROR(pool_->Run([&](appdb::Database& db) -> absl::Status {
    KW_ASSIGN_OR_RETURN(auto rows, Query(db, kSelect, SqlParams().Text(key_name).Bytes(tenant)));
    if (!rows.empty()) out = internal::ReadTenantKeyColumns(SqlRow(rows[0]), key_name, tenant);
    return absl::OkStatus();
  }));
  return out;
}

absl::Status PostgresKeyStore::PutTenantKey(const TenantKeyRecord& record) {
  KW_RETURN_IF_ERROR(internal::CheckNewTenantKey(record));
  return pool_->InTransaction(
      "store a tenant key", OnUnknownOutcome::kReport, [&](appdb::Database& db) -> absl::Status {
        KW_ASSIGN_OR_RETURN(
            uint64_t inserted,
            Execute(db,
                    "INSERT INTO keyward_tenant_keys (key_name, tenant, sealed, created_us) "
                    "VALUES ($1, $2, $3, $4) ON CONFLICT (key_name, tenant) DO NOTHING",
                    SqlParams()
                        .Text(record.key_name)
                        .Bytes(record.tenant)
                        .Bytes(record.sealed)
                        .Time(*record.created)));
        if (inserted == 0) return internal::TenantKeyExists(record.key_name);
        return internal::NotifyChange(db, TenantChanged(record.key_name, record.tenant));
      });
}

absl::StatusOr<std::optional<TenantKeyRecord>> PostgresKeyStore::EraseTenantKey(
    absl::string_view key_name, absl::string_view tenant, absl::Time when,
    absl::string_view by) {
  std::optional<TenantKeyRecord> before;
  KW_RETURN_IF_ERROR(pool_->InTransaction(
      "erase a tenant key", OnUnknownOutcome::kReport, [&](appdb::Database& db) -> absl::Status {
        before.reset();
        KW_ASSIGN_OR_RETURN(
            auto rows, Query(db, absl::StrCat(kSelect, " FOR UPDATE"),
                             SqlParams().Text(key_name).Bytes(tenant)));
        if (!rows.empty()) {
          before = internal::ReadTenantKeyColumns(SqlRow(rows[0]), key_name, tenant);
          internal::ForgetSealed(*before);
          if (before->is_erased()) return absl::OkStatus();
        }
        // The WHERE keeps the first of two concurrent erasures of a tenant
        // that had no row to lock.  The old row version, with the sealed
        // key, stays in the table until VACUUM (Scrub).
        KW_RETURN_IF_ERROR(
            Execute(db,
                    "INSERT INTO keyward_tenant_keys (key_name, tenant, sealed, created_us, "
                    "erased_us, erased_by) VALUES ($1, $2, NULL, NULL, $3, $4) "
                    "ON CONFLICT (key_name, tenant) DO UPDATE SET sealed = NULL, "
                    "erased_us = excluded.erased_us, erased_by = excluded.erased_by "
                    "WHERE keyward_tenant_keys.erased_us IS NULL",
                    SqlParams().Text(key_name).Bytes(tenant).Time(when).Text(by))
                .status());
        return internal::NotifyChange(db, TenantChanged(key_name, tenant));
      }));
  return before;
}

}  // namespace keyward::keystore
