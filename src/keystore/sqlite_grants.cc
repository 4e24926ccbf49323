// Access grants in the SQLite key store: create, list, revoke.
#include <string>

#include "absl/strings/str_cat.h"
#include "keystore/sqlite_key_store.h"
#include "keystore/sqlite_statement.h"
#include "keystore/store_common.h"

namespace keyward::keystore {

absl::Status SqliteKeyStore::CreateGrant(const policy::Grant& g) {
  const std::string ops = internal::GrantOperationsToJson(g);
  const std::string ctx = internal::GrantContextToJson(g);
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(db_, [&]() -> absl::Status {
    Statement s(db_, Prepare(
        "INSERT INTO grants (id, principal, key_pattern, operations, context, "
        "created_us, expires_us, created_by, reason) VALUES "
        "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
    s.Bind(1, g.id).Bind(2, g.principal).Bind(3, g.key).Bind(4, ops)
        .Bind(5, ctx).Bind(6, absl::ToUnixMicros(g.created))
        .Bind(7, absl::ToUnixMicros(g.expires)).Bind(8, g.created_by).Bind(9, g.reason);
    if (s.Step() != SQLITE_DONE) {
      if ((sqlite3_errcode(db_) & 0xff) == SQLITE_CONSTRAINT) {
        return absl::AlreadyExistsError(absl::StrCat("grant ", g.id, " exists"));
      }
      return SqliteError(db_, "create grant");
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<policy::Grant>> SqliteKeyStore::ListGrants(
    absl::Time now, bool include_inactive) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, Prepare(
      "SELECT id, principal, key_pattern, operations, context, created_us, "
      "expires_us, revoked_us, created_by, reason FROM grants WHERE "
      "?1 = 1 OR (revoked_us IS NULL AND expires_us > ?2) ORDER BY created_us"));
  s.Bind(1, include_inactive ? 1 : 0).Bind(2, absl::ToUnixMicros(now));
  std::vector<policy::Grant> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    policy::Grant g;
    g.id = s.Text(0);
    g.principal = s.Text(1);
    g.key = s.Text(2);
    internal::GrantListsFromJson(s.Text(3), s.Text(4), g);
    g.created = absl::FromUnixMicros(s.Int(5));
    g.expires = absl::FromUnixMicros(s.Int(6));
    g.revoked = s.OptionalTime(7);
    g.created_by = s.Text(8);
    g.reason = s.Text(9);
    out.push_back(std::move(g));
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, "list grants");
  return out;
}

absl::Status SqliteKeyStore::RevokeGrant(absl::string_view id, absl::Time when) {
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(db_, [&]() -> absl::Status {
    Statement q(db_, Prepare("SELECT revoked_us FROM grants WHERE id = ?1"));
    q.Bind(1, id);
    const int rc = q.Step();
    if (rc == SQLITE_DONE) return absl::NotFoundError(absl::StrCat("no grant ", id));
    if (rc != SQLITE_ROW) return SqliteError(db_, "read grant");
    if (!q.IsNull(0)) {
      return absl::FailedPreconditionError(absl::StrCat("grant ", id, " is already revoked"));
    }
    Statement u(db_, Prepare("UPDATE grants SET revoked_us = ?2 WHERE id = ?1"));
    u.Bind(1, id).Bind(2, absl::ToUnixMicros(when));
    if (u.Step() != SQLITE_DONE) return SqliteError(db_, "revoke grant");
    return absl::OkStatus();
  });
}

}  // namespace keyward::keystore
