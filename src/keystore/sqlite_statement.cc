// SQLite errors as status codes, and statements run without results.
#include "keystore/sqlite_statement.h"

#include "absl/strings/str_cat.h"

namespace keyward::keystore {

absl::Status SqliteError(sqlite3* db, absl::string_view what) {
  const int code = sqlite3_errcode(db);
  std::string msg =
      absl::StrCat("key store: ", what, ": ", sqlite3_errmsg(db));
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
      return absl::UnavailableError(msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(
          absl::StrCat(msg, "; restore the store from a backup"));
    case SQLITE_CONSTRAINT:
      return absl::AlreadyExistsError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::Status Exec(sqlite3* db, const char* sql, absl::string_view what) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    sqlite3_free(err);
    return SqliteError(db, what);
  }
  return absl::OkStatus();
}

}  // namespace keyward::keystore
