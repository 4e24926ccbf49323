// Tenant keys in the SQLite key store: read, create once, erase (leaving a
// tombstone).  The tenant is stored as a BLOB so that it compares byte for
// byte, whatever its text encoding.
#include <optional>
#include <string>

#include "keystore/sqlite_key_store.h"
#include "keystore/sqlite_statement.h"
#include "keystore/store_common.h"
#include "keystore/store_rows.h"

namespace keyward::keystore {
namespace {

constexpr char kSelect[] =
    "SELECT sealed, created_us, erased_us, erased_by FROM tenant_keys "
    "WHERE key_name = ?1 AND tenant = ?2";


}  // namespace

absl::StatusOr<std::optional<TenantKeyRecord>> SqliteKeyStore::GetTenantKey(
    absl::string_view key_name, absl::string_view tenant) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, Prepare(kSelect));
  s.Bind(1, key_name).BindBlob(2, tenant);
  const int rc = s.Step();
  if (rc == SQLITE_DONE) return std::optional<TenantKeyRecord>();
  if (rc != SQLITE_ROW) return SqliteError(db_, "read a tenant key");
  return std::optional<TenantKeyRecord>(internal::ReadTenantKeyColumns(s, key_name, tenant));
}

absl::Status SqliteKeyStore::PutTenantKey(const TenantKeyRecord& record) {
  KW_RETURN_IF_ERROR(internal::CheckNewTenantKey(record));
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(db_, [&]() -> absl::Status {
    Statement s(db_, Prepare("INSERT INTO tenant_keys (key_name, tenant, sealed, created_us) "
                             "VALUES (?1, ?2, ?3, ?4)"));
    s.Bind(1, record.key_name)
        .BindBlob(2, record.tenant)
        .BindBlob(3, record.sealed)
        .Bind(4, absl::ToUnixMicros(*record.created));
    if (s.Step() != SQLITE_DONE) {
      if ((sqlite3_errcode(db_) & 0xff) == SQLITE_CONSTRAINT) {
        return internal::TenantKeyExists(record.key_name);
      }
      return SqliteError(db_, "store a tenant key");
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::optional<TenantKeyRecord>> SqliteKeyStore::EraseTenantKey(
    absl::string_view key_name, absl::string_view tenant, absl::Time when,
    absl::string_view by) {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<TenantKeyRecord> before;
  absl::Status s = InTransaction(db_, [&]() -> absl::Status {
    {
      Statement read(db_, Prepare(kSelect));
      read.Bind(1, key_name).BindBlob(2, tenant);
      const int rc = read.Step();
      if (rc == SQLITE_ROW) {
        before = internal::ReadTenantKeyColumns(read, key_name, tenant);
        internal::ForgetSealed(*before);
      } else if (rc != SQLITE_DONE) {
        return SqliteError(db_, "read a tenant key");
      }
    }
    if (before && before->is_erased()) return absl::OkStatus();
    // secure_delete zeroes the overwritten cell in the database file; the
    // write-ahead log keeps the old page until KeyStore::Scrub.
    Statement write(db_, Prepare(
        "INSERT INTO tenant_keys (key_name, tenant, sealed, created_us, erased_us, erased_by) "
        "VALUES (?1, ?2, NULL, NULL, ?3, ?4) ON CONFLICT (key_name, tenant) DO UPDATE SET "
        "sealed = NULL, erased_us = excluded.erased_us, erased_by = excluded.erased_by"));
    write.Bind(1, key_name).BindBlob(2, tenant).Bind(3, absl::ToUnixMicros(when)).Bind(4, by);
    if (write.Step() != SQLITE_DONE) return SqliteError(db_, "erase a tenant key");
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return before;
}

}  // namespace keyward::keystore
