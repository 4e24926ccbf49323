// Access grants in the PostgreSQL key store: create, list, revoke.
#include <string>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keystore/postgres_change_feed.h"
#include "keystore/postgres_connection_pool.h"
#include "keystore/postgres_key_store.h"
#include "keystore/store_common.h"

namespace keyward::keystore {
namespace {

const StoreChange kGrantsChanged{StoreChange::Kind::kGrants, "", ""};

}  // namespace

absl::Status PostgresKeyStore::CreateGrant(const policy::Grant& g) {
  return pool_->InTransaction(
      "create a grant", OnUnknownOutcome::kReport, [&](appdb::Database& db) -> absl::Status {
        KW_ASSIGN_OR_RETURN(
            uint64_t inserted,
            Execute(db,
                    "INSERT INTO keyward_grants (id, principal, key_pattern, operations, "
                    "context, created_us, expires_us, created_by, reason) VALUES "
                    "($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
                    SqlParams()
                        .Text(g.id)
                        .Text(g.principal)
                        .Text(g.key)
                        .Text(internal::GrantOperationsToJson(g))
                        .Text(internal::GrantContextToJson(g))
                        .Time(g.created)
                        .Time(g.expires)
                        .Text(g.created_by)
                        .Text(g.reason)));
        if (inserted == 0) return absl::AlreadyExistsError(absl::StrCat("grant ", g.id, " exists"));
        return internal::NotifyChange(db, kGrantsChanged);
      });
}

absl::StatusOr<std::vector<policy::Grant>> PostgresKeyStore::ListGrants(absl::Time now,
                                                                        bool include_inactive) {
  std::vector<policy::Grant> out;
  KW_RETURN_IF_ERROR(pool_->Run([&](appdb::Database& db) -> absl::Status {
    KW_ASSIGN_OR_RETURN(
        auto rows,
        Query(db,
              "SELECT id, principal, key_pattern, operations, context, created_us, "
              "expires_us, revoked_us, created_by, reason FROM keyward_grants WHERE "
              "$1 = 1 OR (revoked_us IS NULL AND expires_us > $2) ORDER BY created_us, id",
              SqlParams().Int(include_inactive ? 1 : 0).Time(now)));
    out.clear();
    for (const auto& r : rows) {
      const SqlRow row(r);
      policy::Grant g;
      g.id = row.Text(0);
      g.principal = row.Text(1);
      g.key = row.Text(2);
      internal::GrantListsFromJson(row.Text(3), row.Text(4), g);
      g.created = row.Time(5);
      g.expires = row.Time(6);
      g.revoked = row.OptionalTime(7);
      g.created_by = row.Text(8);
      g.reason = row.Text(9);
      out.push_back(std::move(g));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::Status PostgresKeyStore::RevokeGrant(absl::string_view id, absl::Time when) {
  return pool_->InTransaction(
      "revoke a grant", OnUnknownOutcome::kReport, [&](appdb::Database& db) -> absl::Status {
        KW_ASSIGN_OR_RETURN(auto rows,
                            Query(db, "SELECT revoked_us FROM keyward_grants WHERE id = $1 "
                                      "FOR UPDATE",
                                  SqlParams().Text(id)));
        if (rows.empty()) return absl::NotFoundError(absl::StrCat("no grant ", id));
        if (!SqlRow(rows[0]).IsNull(0)) {
          return absl::FailedPreconditionError(absl::StrCat("grant ", id, " is already revoked"));
        }
        KW_RETURN_IF_ERROR(Execute(db, "UPDATE keyward_grants SET revoked_us = $2 WHERE id = $1",
                                   SqlParams().Text(id).Time(when))
                               .status());
        return internal::NotifyChange(db, kGrantsChanged);
      });
}

}  // namespace keyward::keystore
