#include "appdb/database.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "appdb/postgres_database.h"
#include "appdb/sqlite_database.h"
#include "appdb/url.h"

namespace keyward::appdb {

absl::StatusOr<std::unique_ptr<Database>> Database::Open(absl::string_view url,
                                                         bool create) {
  if (absl::StartsWith(url, "sqlite:")) {
    absl::string_view path = url.substr(7);
    // sqlite:///abs/path, as some tools write it, names /abs/path.
    if (absl::StartsWith(path, "//")) path.remove_prefix(2);
    auto db = SqliteDatabase::Open(std::string(path), create);
    if (!db.ok()) return db.status();
    return std::unique_ptr<Database>(std::move(*db));
  }
  if (absl::StartsWith(url, "postgresql://") ||
      absl::StartsWith(url, "postgres://")) {
    auto db = PostgresDatabase::Open(std::string(url));
    if (!db.ok()) return db.status();
    return std::unique_ptr<Database>(std::move(*db));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported database URL \"", RedactUrlPassword(url),
                   "\": use sqlite:PATH (e.g. sqlite:/var/lib/app/app.db) or "
                   "postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME "
                   "(postgres:// also works)"));
}

std::string Database::QuoteIdentifier(absl::string_view name) {
  return absl::StrCat("\"", absl::StrReplaceAll(name, {{"\"", "\"\""}}), "\"");
}

absl::Status InTransaction(Database& db,
                           const std::function<absl::Status()>& body) {
  if (absl::Status begun = db.Begin(); !begun.ok()) return begun;
  absl::Status status = body();
  if (status.ok()) status = db.Commit();
  // The body's (or Commit's) error is the one worth reporting; a failing
  // rollback (say, the connection is gone) ends the transaction anyway.
  if (!status.ok()) db.Rollback().IgnoreError();
  return status;
}

absl::string_view ValueTypeName(const Value& value) {
  switch (value.index()) {
    case 0:
      return "NULL";
    case 1:
      return "integer";
    case 2:
      return "real";
    case 3:
      return "text";
    default:
      return "blob";
  }
}

}  // namespace keyward::appdb
