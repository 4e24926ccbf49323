// The service's own secrets, sealed by the root of trust, in the PostgreSQL
// key store: read, create once, replace.
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keystore/postgres_change_feed.h"
#include "keystore/postgres_connection_pool.h"
#include "keystore/postgres_key_store.h"

namespace keyward::keystore {
namespace {

StoreChange SecretChanged(absl::string_view name) {
  StoreChange change;
  change.kind = StoreChange::Kind::kSecret;
  change.key_name = std::string(name);
  return change;
}

}  // namespace

absl::StatusOr<std::optional<std::string>> PostgresKeyStore::GetSealedSecret(
    absl::string_view name) {
  std::optional<std::string> out;
  KW_RETURN_IF_ERROR(pool_->Run([&](appdb::Database& db) -> absl::Status {
    KW_ASSIGN_OR_RETURN(auto rows, Query(db, "SELECT sealed FROM keyward_sealed_secrets "
                                             "WHERE name = $1",
                                         SqlParams().Text(name)));
    if (!rows.empty()) out = SqlRow(rows[0]).Text(0);
    return absl::OkStatus();
  }));
  return out;
}

absl::Status PostgresKeyStore::PutSealedSecret(absl::string_view name, absl::string_view sealed) {
  return pool_->InTransaction(
      "store a secret", OnUnknownOutcome::kReport, [&](appdb::Database& db) -> absl::Status {
        KW_ASSIGN_OR_RETURN(uint64_t inserted,
                            Execute(db,
                                    "INSERT INTO keyward_sealed_secrets (name, sealed) "
                                    "VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                                    SqlParams().Text(name).Bytes(sealed)));
        if (inserted == 0) return absl::AlreadyExistsError(absl::StrCat("secret ", name, " exists"));
        return internal::NotifyChange(db, SecretChanged(name));
      });
}

absl::Status PostgresKeyStore::SetSealedSecret(absl::string_view name, absl::string_view sealed) {
  return pool_->InTransaction(
      "store a secret", OnUnknownOutcome::kRetry, [&](appdb::Database& db) -> absl::Status {
        KW_RETURN_IF_ERROR(Execute(db,
                                   "INSERT INTO keyward_sealed_secrets (name, sealed) "
                                   "VALUES ($1, $2) "
                                   "ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed",
                                   SqlParams().Text(name).Bytes(sealed))
                               .status());
        return internal::NotifyChange(db, SecretChanged(name));
      });
}

}  // namespace keyward::keystore
