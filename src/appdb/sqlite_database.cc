#include "appdb/sqlite_database.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "appdb/sql_text.h"
#include "base/status_macros.h"

namespace keyward::appdb {
namespace {

// Enough for every statement a table job runs in its loop, small enough
// that a caller building SQL text per row does not keep thousands alive.
constexpr size_t kMaxCachedStatements = 64;

absl::StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      return rc == SQLITE_CONSTRAINT_UNIQUE ||
                     rc == SQLITE_CONSTRAINT_PRIMARYKEY
                 ? absl::StatusCode::kAlreadyExists
                 : absl::StatusCode::kFailedPrecondition;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
      return absl::StatusCode::kUnavailable;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::StatusCode::kPermissionDenied;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_ERROR:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
      return absl::StatusCode::kInvalidArgument;
    default:
      return absl::StatusCode::kInternal;
  }
}

Value ColumnValue(sqlite3_stmt* stmt, int col) {
  switch (sqlite3_column_type(stmt, col)) {
    case SQLITE_INTEGER:
      return static_cast<int64_t>(sqlite3_column_int64(stmt, col));
    case SQLITE_FLOAT:
      return sqlite3_column_double(stmt, col);
    case SQLITE_TEXT: {
      const auto* p =
          reinterpret_cast<const char*>(sqlite3_column_text(stmt, col));
      return std::string(p == nullptr ? "" : p,
                         static_cast<size_t>(sqlite3_column_bytes(stmt, col)));
    }
    case SQLITE_BLOB: {
      const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt, col));
      const auto n = static_cast<size_t>(sqlite3_column_bytes(stmt, col));
      return Blob{p == nullptr ? std::string() : std::string(p, n)};
    }
    default:
      return std::monostate{};
  }
}

// Binds without copying (SQLITE_STATIC): the values outlive the statement's
// use, which ends with reset and clear_bindings before Execute/Query return.
int BindValue(sqlite3_stmt* stmt, int i, const Value& v) {
  return std::visit(
      [&](const auto& x) -> int {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return sqlite3_bind_null(stmt, i);
        } else if constexpr (std::is_same_v<T, int64_t>) {
          return sqlite3_bind_int64(stmt, i, x);
        } else if constexpr (std::is_same_v<T, double>) {
          return sqlite3_bind_double(stmt, i, x);
        } else if constexpr (std::is_same_v<T, std::string>) {
          return sqlite3_bind_text64(stmt, i, x.data(), x.size(), SQLITE_STATIC,
                                     SQLITE_UTF8);
        } else {
          // An empty blob bound by pointer would read back as NULL.
          if (x.bytes.empty()) return sqlite3_bind_zeroblob(stmt, i, 0);
          return sqlite3_bind_blob64(stmt, i, x.bytes.data(), x.bytes.size(),
                                     SQLITE_STATIC);
        }
      },
      v);
}

}  // namespace

class SqliteDatabase::Lease {
 public:
  explicit Lease(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~Lease() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_;
};

absl::StatusOr<std::unique_ptr<SqliteDatabase>> SqliteDatabase::Open(
    const std::string& path, bool create) {
  if (path.empty()) {
    return absl::InvalidArgumentError(
        "the SQLite URL names no file: use sqlite:PATH, e.g. "
        "sqlite:/var/lib/app/app.db");
  }
  const bool in_memory = path == ":memory:";
  if (!create && !in_memory) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) {
        return absl::NotFoundError(
            absl::StrCat("no SQLite database at ", path,
                         ": check the path (it is not created)"));
      }
      return absl::UnavailableError(
          absl::StrCat("cannot open the SQLite database ", path, ": ",
                       std::strerror(errno)));
    }
  }
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                    (create ? SQLITE_OPEN_CREATE : 0);
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s(CodeFor(rc),
                   absl::StrCat("cannot open the SQLite database ", path, ": ",
                                db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    sqlite3_close(db);
    return s;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<SqliteDatabase> database(new SqliteDatabase(db, path));
  // sqlite3_open does not read the file; this does, so that a file that is
  // not a database fails here and not at the caller's first statement.
  if (absl::Status s = database->Exec("SELECT count(*) FROM sqlite_master");
      !s.ok()) {
    return absl::Status(
        s.code(), absl::StrCat("cannot open the SQLite database ", path, ": ",
                               sqlite3_errmsg(db)));
  }
  // WAL lets readers run beside the writer.  It is an optimisation, so a
  // file that cannot switch (read-only, or in a read-only directory) keeps
  // its journal mode instead of failing to open.
  if (sqlite3_db_readonly(db, "main") == 0) {
    sqlite3_exec(db, "PRAGMA journal_mode = WAL", nullptr, nullptr, nullptr);
  }
  return database;
}

SqliteDatabase::~SqliteDatabase() {
  for (auto& [sql, cached] : cache_) sqlite3_finalize(cached.stmt);
  sqlite3_close(db_);
}

absl::Status SqliteDatabase::StatementError(int rc, absl::string_view what,
                                            absl::string_view sql) const {
  return absl::Status(
      CodeFor(rc),
      absl::StrCat("sqlite:", path_, ": ", what, " failed (",
                   sqlite3_errmsg(db_), "): ", SqlForMessage(sql)));
}

absl::Status SqliteDatabase::Exec(const char* sql) {
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK)
    return StatementError(sqlite3_extended_errcode(db_), "statement", sql);
  return absl::OkStatus();
}

absl::StatusOr<sqlite3_stmt*> SqliteDatabase::Prepare(
    absl::string_view sql, const std::vector<Value>& params) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    KW_ASSIGN_OR_RETURN(Placeholders placeholders, ScanPlaceholders(sql));
    const std::string& text = placeholders.sqlite_sql;
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v3(db_, text.data(), static_cast<int>(text.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
    if (rc != SQLITE_OK)
      return StatementError(rc, "preparing the statement", sql);
    if (stmt == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("empty SQL statement: ", SqlForMessage(sql)));
    }
    // Only one statement per call, as in PostgreSQL: a second one would be
    // silently ignored.
    sqlite3_stmt* next = nullptr;
    const char* end = text.data() + text.size();
    rc = sqlite3_prepare_v2(db_, tail, static_cast<int>(end - tail), &next,
                            nullptr);
    sqlite3_finalize(next);
    if (rc != SQLITE_OK || next != nullptr) {
      sqlite3_finalize(stmt);
      return absl::InvalidArgumentError(
          absl::StrCat("one SQL statement per call; this text holds more: ",
                       SqlForMessage(sql)));
    }
    if (cache_.size() >= kMaxCachedStatements) {
      auto oldest = std::min_element(
          cache_.begin(), cache_.end(), [](const auto& a, const auto& b) {
            return a.second.last_used < b.second.last_used;
          });
      sqlite3_finalize(oldest->second.stmt);
      cache_.erase(oldest);
    }
    it = cache_.emplace(std::string(sql), CachedStatement{stmt, 0}).first;
  }
  it->second.last_used = ++clock_;
  sqlite3_stmt* stmt = it->second.stmt;
  const int expected = sqlite3_bind_parameter_count(stmt);
  KW_RETURN_IF_ERROR(CheckParameterCount(sql, expected, params.size()));
  for (size_t i = 0; i < params.size(); ++i) {
    const int rc = BindValue(stmt, static_cast<int>(i + 1), params[i]);
    if (rc != SQLITE_OK) {
      sqlite3_clear_bindings(stmt);
      return StatementError(rc, absl::StrCat("binding $", i + 1), sql);
    }
  }
  return stmt;
}

absl::StatusOr<uint64_t> SqliteDatabase::Execute(
    absl::string_view sql, const std::vector<Value>& params) {
  KW_ASSIGN_OR_RETURN(sqlite3_stmt * prepared, Prepare(sql, params));
  Lease stmt(prepared);
  const int64_t before = sqlite3_total_changes64(db_);
  int rc;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
  }
  if (rc != SQLITE_DONE)
    return StatementError(sqlite3_extended_errcode(db_), "statement", sql);
  // sqlite3_changes() keeps the count of the last INSERT/UPDATE/DELETE, so a
  // CREATE after an UPDATE would report the UPDATE's rows.
  if (sqlite3_total_changes64(db_) == before) return 0;
  return static_cast<uint64_t>(sqlite3_changes64(db_));
}

absl::StatusOr<std::vector<ResultRow>> SqliteDatabase::Query(
    absl::string_view sql, const std::vector<Value>& params) {
  KW_ASSIGN_OR_RETURN(sqlite3_stmt * prepared, Prepare(sql, params));
  Lease stmt(prepared);
  std::vector<ResultRow> rows;
  int rc;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    // Read after step: a statement re-prepared there because the schema
    // changed (SELECT * after ALTER TABLE) may have gained columns.
    const int columns = sqlite3_column_count(stmt.get());
    ResultRow& row = rows.emplace_back();
    row.reserve(static_cast<size_t>(columns));
    for (int c = 0; c < columns; ++c) row.push_back(ColumnValue(stmt.get(), c));
  }
  if (rc != SQLITE_DONE)
    return StatementError(sqlite3_extended_errcode(db_), "query", sql);
  return rows;
}

absl::Status SqliteDatabase::Begin() {
  if (sqlite3_get_autocommit(db_) == 0) {
    return absl::FailedPreconditionError(
        "Begin: a transaction is already open");
  }
  // IMMEDIATE takes the write lock now, waiting up to the busy timeout: a
  // deferred transaction that reads and then writes gets SQLITE_BUSY at its
  // first write without waiting when another connection wrote meanwhile.
  return Exec(sqlite3_db_readonly(db_, "main") == 1 ? "BEGIN"
                                                    : "BEGIN IMMEDIATE");
}

absl::Status SqliteDatabase::Commit() {
  if (sqlite3_get_autocommit(db_) != 0) {
    return absl::FailedPreconditionError(
        "Commit: no transaction is open (Begin first)");
  }
  return Exec("COMMIT");
}

absl::Status SqliteDatabase::Rollback() {
  if (sqlite3_get_autocommit(db_) != 0) {
    return absl::FailedPreconditionError("Rollback: no transaction is open");
  }
  return Exec("ROLLBACK");
}

absl::StatusOr<std::vector<std::string>> SqliteDatabase::ListTables() {
  KW_ASSIGN_OR_RETURN(std::vector<ResultRow> rows,
                      Query("SELECT name FROM sqlite_master WHERE type = "
                            "'table' AND name NOT LIKE 'sqlite\\_%' "
                            "ESCAPE '\\'",
                            {}));
  std::vector<std::string> tables;
  for (const ResultRow& row : rows)
    tables.push_back(std::get<std::string>(row[0]));
  std::sort(tables.begin(), tables.end());
  return tables;
}

absl::StatusOr<std::vector<ColumnInfo>> SqliteDatabase::ListColumns(
    absl::string_view table) {
  KW_ASSIGN_OR_RETURN(std::vector<ResultRow> rows,
                      Query("SELECT name, type, pk FROM pragma_table_info($1)",
                            {std::string(table)}));
  if (rows.empty()) {
    return absl::NotFoundError(absl::StrCat("no table ", QuoteIdentifier(table),
                                            " in sqlite:", path_));
  }
  std::vector<ColumnInfo> columns;
  for (const ResultRow& row : rows) {
    columns.push_back(
        {.name = std::get<std::string>(row[0]),
         .declared_type = absl::AsciiStrToLower(std::get<std::string>(row[1])),
         .primary_key = std::get<int64_t>(row[2]) > 0});
  }
  return columns;
}

}  // namespace keyward::appdb
