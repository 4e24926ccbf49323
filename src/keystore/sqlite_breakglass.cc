// Break-glass grants in the SQLite key store: each a JSON document, read and
// changed in one transaction (keystore/key_store.h).
#include <string>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keystore/sqlite_key_store.h"
#include "keystore/sqlite_statement.h"
#include "keystore/store_common.h"

namespace keyward::keystore {

absl::Status SqliteKeyStore::CreateBreakGlass(const policy::BreakGlassGrant& g) {
  const std::string doc = internal::BreakGlassToJson(g);
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(db_, [&]() -> absl::Status {
    Statement s(db_, Prepare("INSERT INTO breakglass_grants (id, requested_us, closed, grant_json) "
                             "VALUES (?1, ?2, ?3, ?4)"));
    s.Bind(1, g.id).Bind(2, absl::ToUnixMicros(g.requested)).Bind(3, g.closed ? 1 : 0).Bind(4, doc);
    if (s.Step() != SQLITE_DONE) {
      if ((sqlite3_errcode(db_) & 0xff) == SQLITE_CONSTRAINT) {
        return absl::AlreadyExistsError(absl::StrCat("break-glass grant ", g.id, " exists"));
      }
      return SqliteError(db_, "create break-glass grant");
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<policy::BreakGlassGrant>> SqliteKeyStore::ListBreakGlass(
    bool include_closed) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, Prepare("SELECT grant_json FROM breakglass_grants WHERE ?1 = 1 OR closed = 0 "
                           "ORDER BY requested_us, id"));
  s.Bind(1, include_closed ? 1 : 0);
  std::vector<policy::BreakGlassGrant> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    KW_ASSIGN_OR_RETURN(policy::BreakGlassGrant g, internal::BreakGlassFromJson(s.Text(0)));
    out.push_back(std::move(g));
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, "list break-glass grants");
  return out;
}

absl::StatusOr<policy::BreakGlassGrant> SqliteKeyStore::UpdateBreakGlass(
    absl::string_view id, const std::function<absl::Status(policy::BreakGlassGrant&)>& update) {
  std::lock_guard<std::mutex> lock(mu_);
  policy::BreakGlassGrant g;
  KW_RETURN_IF_ERROR(InTransaction(db_, [&]() -> absl::Status {
    Statement q(db_, Prepare("SELECT grant_json FROM breakglass_grants WHERE id = ?1"));
    q.Bind(1, id);
    const int rc = q.Step();
    if (rc == SQLITE_DONE) {
      return absl::NotFoundError(absl::StrCat("no break-glass grant '", id, "'"));
    }
    if (rc != SQLITE_ROW) return SqliteError(db_, "read break-glass grant");
    KW_ASSIGN_OR_RETURN(g, internal::BreakGlassFromJson(q.Text(0)));
    KW_RETURN_IF_ERROR(update(g));
    Statement u(db_, Prepare("UPDATE breakglass_grants SET closed = ?2, grant_json = ?3 "
                             "WHERE id = ?1"));
    u.Bind(1, id).Bind(2, g.closed ? 1 : 0).Bind(3, internal::BreakGlassToJson(g));
    if (u.Step() != SQLITE_DONE) return SqliteError(db_, "update break-glass grant");
    return absl::OkStatus();
  }));
  return g;
}

}  // namespace keyward::keystore
