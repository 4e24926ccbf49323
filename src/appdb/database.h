// The application's own database, where field-level encryption keeps its
// wrapped data keys and the values it encrypts: SQLite (`sqlite:PATH`) or
// PostgreSQL (`postgresql://…` / `postgres://…`, libpq's URI syntax).
//
// One small interface over both so that the field code, the table jobs and
// the cleartext scanner are written once.  SQL text uses `$1`, `$2`, … for
// parameters in both dialects (the SQLite backend rewrites them), and only
// the SQL both dialects share (INSERT … ON CONFLICT DO NOTHING, LIMIT,
// CREATE TABLE IF NOT EXISTS); where they differ the caller asks dialect().
//
// One statement per Execute/Query call.  Statements are prepared once and
// cached by their SQL text (up to 64 per connection), so a loop that runs
// the same text with new parameters does not parse it again: build SQL
// text once, not per row.
//
// Errors of statements, the same kinds on both backends: kInvalidArgument
// for bad SQL, unknown tables or columns, a wrong number of parameters;
// kAlreadyExists for a unique or primary key violation; kFailedPrecondition
// for another constraint; kUnavailable for a busy database or a lost
// connection; kPermissionDenied for a read-only file or missing privilege.
// Messages name the database and quote the statement's first 80 or so
// characters, never parameter values (they may be secrets).
//
// Thread-safety: a Database is one connection; use it from one thread at a
// time (callers that share one hold their own mutex).
#ifndef KEYWARD_APPDB_DATABASE_H_
#define KEYWARD_APPDB_DATABASE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace keyward::appdb {

// Bytes from or for a BLOB (SQLite) / BYTEA (PostgreSQL) column.
struct Blob {
  std::string bytes;
  bool operator==(const Blob&) const = default;
};

// A value as the database holds it.  monostate is SQL NULL.  Integers of
// every width come back as int64_t, floating point as double, every
// character type as std::string, BLOB/BYTEA as Blob.  Other PostgreSQL types
// (numeric, date, json, …) come back as their text form, and boolean as
// int64_t 0 or 1.  PostgreSQL text cannot hold a NUL byte: such a
// std::string parameter is kInvalidArgument there (pass bytes as Blob).
using Value = std::variant<std::monostate, int64_t, double, std::string, Blob>;
using ResultRow = std::vector<Value>;

enum class Dialect { kSqlite, kPostgres };

struct ColumnInfo {
  std::string name;
  std::string declared_type;  // as declared, lower case ("integer", "text", "bytea", "")
  bool primary_key = false;
};

class Database {
 public:
  virtual ~Database() = default;

  // Opens `url`: `sqlite:PATH` (also `sqlite:///abs/path`; the file must
  // exist unless `create` is set) or a PostgreSQL URI (`create` does not
  // apply: the database must exist).  Errors: kInvalidArgument for a URL of neither
  // kind (the message shows both forms); kUnavailable when the server
  // cannot be reached; kNotFound for a missing SQLite file.  Messages never
  // contain the URL's password.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Database>> Open(absl::string_view url,
                                                                      bool create = false);

  virtual Dialect dialect() const = 0;
  // The URL with any password removed: for reports and data set names.
  virtual std::string RedactedUrl() const = 0;

  // Runs one statement with `$N` parameters; returns the rows it changed.
  [[nodiscard]] virtual absl::StatusOr<uint64_t> Execute(absl::string_view sql,
                                                         const std::vector<Value>& params = {}) = 0;
  // Runs one query with `$N` parameters and returns every row.
  [[nodiscard]] virtual absl::StatusOr<std::vector<ResultRow>> Query(
      absl::string_view sql, const std::vector<Value>& params = {}) = 0;

  // Explicit transactions.  Begin inside one, and Commit or Rollback
  // outside one, are kFailedPrecondition.  On PostgreSQL a failed statement
  // aborts the whole transaction, and Commit then rolls back and returns
  // kAborted; SQLite keeps the statements that succeeded.
  [[nodiscard]] virtual absl::Status Begin() = 0;
  [[nodiscard]] virtual absl::Status Commit() = 0;
  [[nodiscard]] virtual absl::Status Rollback() = 0;

  // User tables (not the database's own catalog), sorted by name.
  [[nodiscard]] virtual absl::StatusOr<std::vector<std::string>> ListTables() = 0;
  // Columns of `table` in declaration order.  kNotFound for no such table.
  [[nodiscard]] virtual absl::StatusOr<std::vector<ColumnInfo>> ListColumns(
      absl::string_view table) = 0;

  // `name` quoted as an SQL identifier ("a""b").
  static std::string QuoteIdentifier(absl::string_view name);
  // The binary column type: "BLOB" or "BYTEA".
  absl::string_view BlobType() const { return dialect() == Dialect::kSqlite ? "BLOB" : "BYTEA"; }
};

// Runs `body` between Begin and Commit; rolls back when `body` or Commit
// fails, and returns that error.
[[nodiscard]] absl::Status InTransaction(Database& db, const std::function<absl::Status()>& body);

// The value's SQL type for messages: "NULL", "integer", "real", "text", "blob".
absl::string_view ValueTypeName(const Value& value);

}  // namespace keyward::appdb

#endif  // KEYWARD_APPDB_DATABASE_H_
