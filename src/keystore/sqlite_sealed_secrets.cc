// The service's own secrets, sealed by the root of trust, in the SQLite key
// store: read, create once, replace.
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "keystore/sqlite_key_store.h"
#include "keystore/sqlite_statement.h"

namespace keyward::keystore {

absl::Status SqliteKeyStore::SetSealedSecret(absl::string_view name, absl::string_view sealed) {
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(db_, [&]() -> absl::Status {
    Statement s(db_, Prepare("INSERT INTO sealed_secrets (name, sealed) VALUES (?1, ?2) "
                             "ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed"));
    s.Bind(1, name).BindBlob(2, sealed);
    if (s.Step() != SQLITE_DONE) return SqliteError(db_, "store secret");
    return absl::OkStatus();
  });
}

absl::StatusOr<std::optional<std::string>> SqliteKeyStore::GetSealedSecret(
    absl::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, Prepare("SELECT sealed FROM sealed_secrets WHERE name = ?1"));
  s.Bind(1, name);
  const int rc = s.Step();
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return SqliteError(db_, "read secret");
  return std::optional<std::string>(s.Text(0));
}

absl::Status SqliteKeyStore::PutSealedSecret(absl::string_view name,
                                             absl::string_view sealed) {
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(db_, [&]() -> absl::Status {
    Statement s(db_, Prepare("INSERT INTO sealed_secrets (name, sealed) VALUES (?1, ?2)"));
    s.Bind(1, name).BindBlob(2, sealed);
    if (s.Step() != SQLITE_DONE) {
      if ((sqlite3_errcode(db_) & 0xff) == SQLITE_CONSTRAINT) {
        return absl::AlreadyExistsError(absl::StrCat("secret ", name, " exists"));
      }
      return SqliteError(db_, "store secret");
    }
    return absl::OkStatus();
  });
}

}  // namespace keyward::keystore
