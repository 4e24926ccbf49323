// The SQLite C API as the key store uses it: a prepared statement with RAII,
// SQLite errors mapped to status codes, and transactions that roll back.
#ifndef KEYWARD_KEYSTORE_SQLITE_STATEMENT_H_
#define KEYWARD_KEYSTORE_SQLITE_STATEMENT_H_

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/status_macros.h"

namespace keyward::keystore {

// RAII over a prepared statement: owned (finalized at the end) or borrowed
// from the store's cache (reset and unbound at the end, for the next use).
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  Statement(sqlite3* db, sqlite3_stmt* cached) : db_(db), stmt_(cached), owned_(false) {
    rc_ = cached != nullptr ? SQLITE_OK : SQLITE_ERROR;
  }
  ~Statement() {
    if (owned_) {
      sqlite3_finalize(stmt_);
    } else if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  Statement& Bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Statement& Bind(int i, absl::string_view v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  Statement& BindBlob(int i, absl::string_view v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  Statement& BindNull(int i) {
    sqlite3_bind_null(stmt_, i);
    return *this;
  }
  Statement& BindOptionalTime(int i, const std::optional<absl::Time>& t) {
    return t ? Bind(i, absl::ToUnixMicros(*t)) : BindNull(i);
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return rc_ = sqlite3_step(stmt_); }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  bool IsNull(int col) const {
    return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
  }
  std::string Text(int col) const {
    const auto* p = sqlite3_column_blob(stmt_, col);
    return p ? std::string(static_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }
  std::optional<absl::Time> OptionalTime(int col) const {
    if (IsNull(col)) return std::nullopt;
    return absl::FromUnixMicros(Int(col));
  }
  int rc() const { return rc_; }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  bool owned_ = true;
  int rc_;
};

// The status for the last error on `db`, saying `what` failed: kUnavailable
// for busy, I/O and read-only errors, kDataLoss for a damaged file,
// kAlreadyExists for a constraint, kInternal otherwise.
absl::Status SqliteError(sqlite3* db, absl::string_view what);

// Runs `sql` (any number of statements, no results).
absl::Status Exec(sqlite3* db, const char* sql, absl::string_view what);

// Runs `body` inside BEGIN IMMEDIATE ... COMMIT, rolling back on error.
template <typename Body>
absl::Status InTransaction(sqlite3* db, Body body) {
  KW_RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE", "begin transaction"));
  absl::Status status = body();
  if (status.ok()) status = Exec(db, "COMMIT", "commit");
  if (!status.ok()) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  return status;
}

}  // namespace keyward::keystore

#endif  // KEYWARD_KEYSTORE_SQLITE_STATEMENT_H_
