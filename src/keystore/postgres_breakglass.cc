// Break-glass grants in the PostgreSQL key store: each a JSON document,
// changed under a row lock so that replicas count decrypts one at a time.
#include <string>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keystore/postgres_change_feed.h"
#include "keystore/postgres_connection_pool.h"
#include "keystore/postgres_key_store.h"
#include "keystore/store_common.h"

namespace keyward::keystore {
namespace {

// Replicas re-read their grants (break-glass ones included) on this.
const StoreChange kGrantsChanged{StoreChange::Kind::kGrants, "", ""};

}  // namespace

absl::Status PostgresKeyStore::CreateBreakGlass(const policy::BreakGlassGrant& g) {
  return pool_->InTransaction(
      "create a break-glass grant", OnUnknownOutcome::kReport,
      [&](appdb::Database& db) -> absl::Status {
        KW_ASSIGN_OR_RETURN(
            uint64_t inserted,
            Execute(db,
                    "INSERT INTO keyward_breakglass_grants (id, requested_us, closed, grant_json) "
                    "VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
                    SqlParams()
                        .Text(g.id)
                        .Time(g.requested)
                        .Int(g.closed ? 1 : 0)
                        .Text(internal::BreakGlassToJson(g))));
        if (inserted == 0) {
          return absl::AlreadyExistsError(absl::StrCat("break-glass grant ", g.id, " exists"));
        }
        return internal::NotifyChange(db, kGrantsChanged);
      });
}

absl::StatusOr<std::vector<policy::BreakGlassGrant>> PostgresKeyStore::ListBreakGlass(
    bool include_closed) {
  std::vector<policy::BreakGlassGrant> out;
  KW_RETURN_IF_ERROR(pool_->Run([&](appdb::Database& db) -> absl::Status {
    KW_ASSIGN_OR_RETURN(auto rows,
                        Query(db,
                              "SELECT grant_json FROM keyward_breakglass_grants WHERE $1 = 1 OR "
                              "closed = 0 ORDER BY requested_us, id",
                              SqlParams().Int(include_closed ? 1 : 0)));
    out.clear();
    for (const auto& r : rows) {
      KW_ASSIGN_OR_RETURN(policy::BreakGlassGrant g,
                          internal::BreakGlassFromJson(SqlRow(r).Text(0)));
      out.push_back(std::move(g));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<policy::BreakGlassGrant> PostgresKeyStore::UpdateBreakGlass(
    absl::string_view id, const std::function<absl::Status(policy::BreakGlassGrant&)>& update) {
  policy::BreakGlassGrant g;
  KW_RETURN_IF_ERROR(pool_->InTransaction(
      "change a break-glass grant", OnUnknownOutcome::kReport,
      [&](appdb::Database& db) -> absl::Status {
        KW_ASSIGN_OR_RETURN(auto rows,
                            Query(db,
                                  "SELECT grant_json FROM keyward_breakglass_grants "
                                  "WHERE id = $1 FOR UPDATE",
                                  SqlParams().Text(id)));
        if (rows.empty()) {
          return absl::NotFoundError(absl::StrCat("no break-glass grant '", id, "'"));
        }
        KW_ASSIGN_OR_RETURN(g, internal::BreakGlassFromJson(SqlRow(rows[0]).Text(0)));
        KW_RETURN_IF_ERROR(update(g));
        KW_RETURN_IF_ERROR(Execute(db,
                                   "UPDATE keyward_breakglass_grants SET closed = $2, "
                                   "grant_json = $3 WHERE id = $1",
                                   SqlParams()
                                       .Text(id)
                                       .Int(g.closed ? 1 : 0)
                                       .Text(internal::BreakGlassToJson(g)))
                               .status());
        return internal::NotifyChange(db, kGrantsChanged);
      }));
  return g;
}

}  // namespace keyward::keystore
