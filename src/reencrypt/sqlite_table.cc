#include "reencrypt/sqlite_table.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <climits>

#include "absl/strings/match.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace keyward::reencrypt {
namespace {

constexpr char kCheckpointSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS keyward_reencrypt_checkpoints (
  job TEXT PRIMARY KEY,
  after_int INTEGER,
  after_text TEXT,
  rows_done INTEGER NOT NULL,
  rows_changed INTEGER NOT NULL,
  started_us INTEGER NOT NULL,
  updated_us INTEGER NOT NULL
))sql";

bool IsIdentifier(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

absl::Status SqlError(sqlite3* db, absl::string_view what) {
  const int code = sqlite3_errcode(db);
  const std::string msg = absl::StrCat(what, ": ", sqlite3_errmsg(db));
  if (code == SQLITE_BUSY || code == SQLITE_LOCKED) return absl::UnavailableError(msg);
  if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) return absl::DataLossError(msg);
  return absl::InternalError(msg);
}

// A prepared statement, finalized at the end of the scope.
class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(s_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return s_; }
  void BindId(int i, const RowId& id) {
    if (const int64_t* n = std::get_if<int64_t>(&id)) {
      sqlite3_bind_int64(s_, i, *n);
    } else {
      const std::string& t = std::get<std::string>(id);
      sqlite3_bind_text(s_, i, t.data(), static_cast<int>(t.size()), SQLITE_TRANSIENT);
    }
  }
  void BindBlob(int i, const std::string& b) {
    sqlite3_bind_blob(s_, i, b.data(), static_cast<int>(b.size()), SQLITE_STATIC);
  }
  void Reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  int rc_;
};

std::string ColumnBytes(sqlite3_stmt* s, int col) {
  const void* p = sqlite3_column_blob(s, col);
  const int n = sqlite3_column_bytes(s, col);
  return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), n);
}

RowId ColumnId(sqlite3_stmt* s, int col) {
  if (sqlite3_column_type(s, col) == SQLITE_INTEGER) return sqlite3_column_int64(s, col);
  return ColumnBytes(s, col);
}

}  // namespace

std::string RowIdString(const RowId& id) {
  if (const int64_t* n = std::get_if<int64_t>(&id)) return std::to_string(*n);
  return std::get<std::string>(id);
}

absl::StatusOr<std::string> SqlitePathFromUrl(const std::string& url) {
  if (absl::StartsWith(url, "sqlite:") && url.size() > 7) return url.substr(7);
  return absl::InvalidArgumentError(absl::StrCat(
      "--db '", url, "' is not supported; use sqlite:PATH (PostgreSQL arrives with the "
      "high-availability work)"));
}

absl::StatusOr<std::unique_ptr<SqliteTable>> SqliteTable::Open(const std::string& path,
                                                               const std::string& table,
                                                               const std::string& column,
                                                               const std::string& id_column) {
  for (const auto& [what, name] :
       {std::pair{"--table", &table}, {"--column", &column}, {"--id-column", &id_column}}) {
    if (!IsIdentifier(*name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " '", *name, "' is not a plain SQL identifier (letters, digits, _)"));
    }
  }
  // The id orders the job and marks its progress; were it the column being
  // rewritten, each rewrite would move the row ahead of the checkpoint
  // again, and the job would never end.
  if (absl::AsciiStrToLower(id_column) == absl::AsciiStrToLower(column)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--id-column '", id_column, "' is the column being re-encrypted; name the table's "
        "unique id column (an INTEGER PRIMARY KEY, or a unique TEXT key)"));
  }
  std::unique_ptr<SqliteTable> t(new SqliteTable());
  char resolved[PATH_MAX];
  t->path_ = ::realpath(path.c_str(), resolved) != nullptr ? resolved : path;
  t->table_ = table;
  t->column_ = column;
  t->id_column_ = id_column;
  if (sqlite3_open_v2(path.c_str(), &t->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    const std::string msg = t->db_ ? sqlite3_errmsg(t->db_) : "out of memory";
    return absl::NotFoundError(absl::StrCat("cannot open the database ", path, ": ", msg));
  }
  sqlite3_busy_timeout(t->db_, 10000);
  // Is it the table and columns we were told?
  Stmt probe(t->db_, absl::StrCat("SELECT \"", id_column, "\", \"", column, "\" FROM \"",
                                  table, "\" LIMIT 0"));
  if (!probe.ok()) {
    return absl::NotFoundError(absl::StrCat("database ", path, ": ",
                                            sqlite3_errmsg(t->db_),
                                            " (check --table, --column and --id-column)"));
  }
  char* err = nullptr;
  if (sqlite3_exec(t->db_, kCheckpointSchema, nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string msg = err ? err : "?";
    sqlite3_free(err);
    return absl::UnavailableError(absl::StrCat("cannot create the checkpoint table in ",
                                               path, ": ", msg));
  }
  return t;
}

SqliteTable::~SqliteTable() {
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

std::string SqliteTable::DataSetName() const {
  return absl::StrCat("sqlite:", path_, "#", table_, ".", column_);
}

absl::StatusOr<uint64_t> SqliteTable::CountRows() {
  Stmt s(db_, absl::StrCat("SELECT COUNT(*) FROM \"", table_, "\" WHERE \"", column_,
                           "\" IS NOT NULL"));
  if (!s.ok() || sqlite3_step(s.get()) != SQLITE_ROW) return SqlError(db_, "count rows");
  return static_cast<uint64_t>(sqlite3_column_int64(s.get(), 0));
}

absl::StatusOr<std::vector<Row>> SqliteTable::ReadBatch(const std::optional<RowId>& after,
                                                        size_t limit) {
  const std::string sql =
      absl::StrCat("SELECT \"", id_column_, "\", \"", column_, "\" FROM \"", table_,
                   "\" WHERE \"", column_, "\" IS NOT NULL",
                   after ? absl::StrCat(" AND \"", id_column_, "\" > ?1") : "", " ORDER BY \"",
                   id_column_, "\" LIMIT ", limit);
  Stmt s(db_, sql);
  if (!s.ok()) return SqlError(db_, "read rows");
  if (after) s.BindId(1, *after);
  std::vector<Row> rows;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    rows.push_back({ColumnId(s.get(), 0), ColumnBytes(s.get(), 1)});
  }
  if (rc != SQLITE_DONE) return SqlError(db_, "read rows");
  return rows;
}

absl::StatusOr<uint64_t> SqliteTable::CommitBatch(const std::vector<Update>& updates,
                                                  const std::string& job,
                                                  const Checkpoint& cp) {
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return SqlError(db_, "begin");
  }
  auto rollback = [&](absl::Status s) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return s;
  };
  uint64_t replaced = 0;
  {
    Stmt u(db_, absl::StrCat("UPDATE \"", table_, "\" SET \"", column_, "\" = ?1 WHERE \"",
                             id_column_, "\" = ?2 AND \"", column_, "\" = ?3"));
    if (!u.ok()) return rollback(SqlError(db_, "prepare update"));
    for (const Update& up : updates) {
      u.BindBlob(1, up.new_value);
      u.BindId(2, up.id);
      u.BindBlob(3, up.old_value);
      if (sqlite3_step(u.get()) != SQLITE_DONE) return rollback(SqlError(db_, "update row"));
      replaced += static_cast<uint64_t>(sqlite3_changes(db_));
      u.Reset();
    }
  }
  {
    Stmt c(db_,
           "INSERT INTO keyward_reencrypt_checkpoints (job, after_int, after_text, rows_done, "
           "rows_changed, started_us, updated_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
           "ON CONFLICT (job) DO UPDATE SET after_int = excluded.after_int, "
           "after_text = excluded.after_text, rows_done = excluded.rows_done, "
           "rows_changed = excluded.rows_changed, updated_us = excluded.updated_us");
    if (!c.ok()) return rollback(SqlError(db_, "prepare checkpoint"));
    sqlite3_bind_text(c.get(), 1, job.data(), static_cast<int>(job.size()), SQLITE_STATIC);
    if (cp.after) {
      if (const int64_t* n = std::get_if<int64_t>(&*cp.after)) {
        sqlite3_bind_int64(c.get(), 2, *n);
      } else {
        const std::string& t = std::get<std::string>(*cp.after);
        sqlite3_bind_text(c.get(), 3, t.data(), static_cast<int>(t.size()), SQLITE_TRANSIENT);
      }
    }
    sqlite3_bind_int64(c.get(), 4, static_cast<int64_t>(cp.rows_done));
    sqlite3_bind_int64(c.get(), 5, static_cast<int64_t>(cp.rows_changed + replaced));
    sqlite3_bind_int64(c.get(), 6, absl::ToUnixMicros(cp.started));
    sqlite3_bind_int64(c.get(), 7, absl::ToUnixMicros(absl::Now()));
    if (sqlite3_step(c.get()) != SQLITE_DONE) return rollback(SqlError(db_, "write checkpoint"));
  }
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return rollback(SqlError(db_, "commit"));
  }
  return replaced;
}

absl::StatusOr<std::optional<Checkpoint>> SqliteTable::LoadCheckpoint(const std::string& job) {
  Stmt s(db_,
         "SELECT after_int, after_text, rows_done, rows_changed, started_us FROM "
         "keyward_reencrypt_checkpoints WHERE job = ?1");
  if (!s.ok()) return SqlError(db_, "read checkpoint");
  sqlite3_bind_text(s.get(), 1, job.data(), static_cast<int>(job.size()), SQLITE_STATIC);
  const int rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE) return std::optional<Checkpoint>();
  if (rc != SQLITE_ROW) return SqlError(db_, "read checkpoint");
  Checkpoint cp;
  if (sqlite3_column_type(s.get(), 0) == SQLITE_INTEGER) {
    cp.after = sqlite3_column_int64(s.get(), 0);
  } else if (sqlite3_column_type(s.get(), 1) != SQLITE_NULL) {
    cp.after = ColumnBytes(s.get(), 1);
  }
  cp.rows_done = static_cast<uint64_t>(sqlite3_column_int64(s.get(), 2));
  cp.rows_changed = static_cast<uint64_t>(sqlite3_column_int64(s.get(), 3));
  cp.started = absl::FromUnixMicros(sqlite3_column_int64(s.get(), 4));
  return std::optional<Checkpoint>(std::move(cp));
}

absl::Status SqliteTable::ClearCheckpoint(const std::string& job) {
  Stmt s(db_, "DELETE FROM keyward_reencrypt_checkpoints WHERE job = ?1");
  if (!s.ok()) return SqlError(db_, "clear checkpoint");
  sqlite3_bind_text(s.get(), 1, job.data(), static_cast<int>(job.size()), SQLITE_STATIC);
  if (sqlite3_step(s.get()) != SQLITE_DONE) return SqlError(db_, "clear checkpoint");
  return absl::OkStatus();
}

absl::StatusOr<std::optional<uint64_t>> SqliteTable::ExternalChanges() {
  // SQLite's data_version: changes when another connection commits.
  Stmt s(db_, "PRAGMA data_version");
  if (!s.ok() || sqlite3_step(s.get()) != SQLITE_ROW) return SqlError(db_, "read data_version");
  return std::optional<uint64_t>(static_cast<uint64_t>(sqlite3_column_int64(s.get(), 0)));
}

}  // namespace keyward::reencrypt
