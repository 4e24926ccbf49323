#include "reencrypt/database_table.h"

#include <stdlib.h>

#include <climits>
#include <utility>
#include <variant>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace keyward::reencrypt {
namespace {

// BIGINT: PostgreSQL's INTEGER is 32 bits; SQLite reads either as integer.
constexpr char kCheckpointSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS keyward_reencrypt_checkpoints (
  job TEXT PRIMARY KEY,
  after_int BIGINT,
  after_text TEXT,
  rows_done BIGINT NOT NULL,
  rows_changed BIGINT NOT NULL,
  started_us BIGINT NOT NULL,
  updated_us BIGINT NOT NULL
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

appdb::Value IdValue(const RowId& id) {
  if (const int64_t* n = std::get_if<int64_t>(&id)) return *n;
  return std::get<std::string>(id);
}

// An id column's value: integers as integers, anything else (text, or a
// type PostgreSQL returns as text, such as uuid) as text.
absl::StatusOr<RowId> IdFrom(const appdb::Value& v) {
  if (const int64_t* n = std::get_if<int64_t>(&v)) return RowId(std::in_place_type<int64_t>, *n);
  if (const std::string* s = std::get_if<std::string>(&v)) {
    return RowId(std::in_place_type<std::string>, *s);
  }
  if (const appdb::Blob* b = std::get_if<appdb::Blob>(&v)) {
    return RowId(std::in_place_type<std::string>, b->bytes);
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "the id column holds a ", appdb::ValueTypeName(v),
      " value; --id-column must name the table's unique integer or text key"));
}

std::string BytesOf(appdb::Value& v) {
  if (appdb::Blob* b = std::get_if<appdb::Blob>(&v)) return std::move(b->bytes);
  if (std::string* s = std::get_if<std::string>(&v)) return std::move(*s);
  return std::string();
}

int64_t IntOf(const appdb::Value& v) {
  const int64_t* n = std::get_if<int64_t>(&v);
  return n != nullptr ? *n : 0;
}

}  // namespace

std::string RowIdString(const RowId& id) {
  if (const int64_t* n = std::get_if<int64_t>(&id)) return std::to_string(*n);
  return std::get<std::string>(id);
}

absl::StatusOr<std::unique_ptr<DatabaseTable>> DatabaseTable::Open(const std::string& url,
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
  std::unique_ptr<DatabaseTable> t(new DatabaseTable());
  KW_ASSIGN_OR_RETURN(t->db_, appdb::Database::Open(url));
  t->table_ = appdb::Database::QuoteIdentifier(table);
  t->column_ = appdb::Database::QuoteIdentifier(column);
  t->id_column_ = appdb::Database::QuoteIdentifier(id_column);
  std::string where = t->db_->RedactedUrl();
  if (t->db_->dialect() == appdb::Dialect::kSqlite) {
    // The absolute path: the same file reports as the same data set
    // whatever directory the job ran from.
    const std::string path = where.substr(where.find(':') + 1);
    char resolved[PATH_MAX];
    if (::realpath(path.c_str(), resolved) != nullptr) where = absl::StrCat("sqlite:", resolved);
  }
  t->name_ = absl::StrCat(where, "#", table, ".", column);
  // Is it the table and columns we were told?
  auto probe = t->db_->Query(absl::StrCat("SELECT ", t->id_column_, ", ", t->column_, " FROM ",
                                          t->table_, " LIMIT 0"));
  if (!probe.ok()) {
    if (!absl::IsInvalidArgument(probe.status())) return probe.status();
    return absl::NotFoundError(absl::StrCat(probe.status().message(),
                                            " (check --table, --column and --id-column)"));
  }
  auto created = t->db_->Execute(kCheckpointSchema);
  if (!created.ok()) {
    return absl::Status(created.status().code(),
                        absl::StrCat("cannot create the checkpoint table "
                                     "keyward_reencrypt_checkpoints: ",
                                     created.status().message()));
  }
  return t;
}

std::string DatabaseTable::DataSetName() const { return name_; }

absl::StatusOr<uint64_t> DatabaseTable::CountRows() {
  KW_ASSIGN_OR_RETURN(auto rows, db_->Query(absl::StrCat("SELECT COUNT(*) FROM ", table_,
                                                         " WHERE ", column_, " IS NOT NULL")));
  if (rows.size() != 1 || rows[0].empty()) return absl::InternalError("count rows: no result");
  return static_cast<uint64_t>(IntOf(rows[0][0]));
}

absl::StatusOr<std::vector<Row>> DatabaseTable::ReadBatch(const std::optional<RowId>& after,
                                                          size_t limit) {
  const std::string sql =
      absl::StrCat("SELECT ", id_column_, ", ", column_, " FROM ", table_, " WHERE ", column_,
                   " IS NOT NULL", after ? absl::StrCat(" AND ", id_column_, " > $1") : "",
                   " ORDER BY ", id_column_, " LIMIT ", limit);
  std::vector<appdb::Value> params;
  if (after) params.push_back(IdValue(*after));
  KW_ASSIGN_OR_RETURN(auto result, db_->Query(sql, params));
  std::vector<Row> rows;
  rows.reserve(result.size());
  for (auto& r : result) {
    KW_ASSIGN_OR_RETURN(RowId id, IdFrom(r[0]));
    rows.push_back({std::move(id), BytesOf(r[1])});
  }
  return rows;
}

absl::StatusOr<uint64_t> DatabaseTable::CommitBatch(const std::vector<Update>& updates,
                                                    const std::string& job,
                                                    const Checkpoint& cp) {
  const std::string update = absl::StrCat("UPDATE ", table_, " SET ", column_, " = $1 WHERE ",
                                          id_column_, " = $2 AND ", column_, " = $3");
  uint64_t replaced = 0;
  KW_RETURN_IF_ERROR(appdb::InTransaction(*db_, [&]() -> absl::Status {
    for (const Update& up : updates) {
      const std::vector<appdb::Value> params = {appdb::Blob{up.new_value}, IdValue(up.id),
                                                appdb::Blob{up.old_value}};
      KW_ASSIGN_OR_RETURN(uint64_t n, db_->Execute(update, params));
      replaced += n;
    }
    appdb::Value after_int, after_text;
    if (cp.after) {
      if (const int64_t* n = std::get_if<int64_t>(&*cp.after)) {
        after_int = *n;
      } else {
        after_text = std::get<std::string>(*cp.after);
      }
    }
    return db_
        ->Execute(
            "INSERT INTO keyward_reencrypt_checkpoints (job, after_int, after_text, rows_done, "
            "rows_changed, started_us, updated_us) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT (job) DO UPDATE SET after_int = excluded.after_int, "
            "after_text = excluded.after_text, rows_done = excluded.rows_done, "
            "rows_changed = excluded.rows_changed, updated_us = excluded.updated_us",
            {job, after_int, after_text, static_cast<int64_t>(cp.rows_done),
             static_cast<int64_t>(cp.rows_changed + replaced), absl::ToUnixMicros(cp.started),
             absl::ToUnixMicros(absl::Now())})
        .status();
  }));
  return replaced;
}

absl::StatusOr<std::optional<Checkpoint>> DatabaseTable::LoadCheckpoint(const std::string& job) {
  KW_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT after_int, after_text, rows_done, "
                                            "rows_changed, started_us FROM "
                                            "keyward_reencrypt_checkpoints WHERE job = $1",
                                            {job}));
  if (rows.empty()) return std::optional<Checkpoint>();
  const appdb::ResultRow& r = rows[0];
  Checkpoint cp;
  if (const int64_t* n = std::get_if<int64_t>(&r[0])) {
    cp.after.emplace(std::in_place_type<int64_t>, *n);
  } else if (const std::string* s = std::get_if<std::string>(&r[1])) {
    cp.after.emplace(std::in_place_type<std::string>, *s);
  }
  cp.rows_done = static_cast<uint64_t>(IntOf(r[2]));
  cp.rows_changed = static_cast<uint64_t>(IntOf(r[3]));
  cp.started = absl::FromUnixMicros(IntOf(r[4]));
  return std::optional<Checkpoint>(std::move(cp));
}

absl::Status DatabaseTable::ClearCheckpoint(const std::string& job) {
  return db_->Execute("DELETE FROM keyward_reencrypt_checkpoints WHERE job = $1", {job})
      .status();
}

absl::StatusOr<std::optional<uint64_t>> DatabaseTable::ExternalChanges() {
  if (db_->dialect() != appdb::Dialect::kSqlite) return std::optional<uint64_t>();
  // SQLite's data_version: changes when another connection commits.
  KW_ASSIGN_OR_RETURN(auto rows, db_->Query("PRAGMA data_version"));
  if (rows.empty() || rows[0].empty()) return absl::InternalError("no data_version");
  return std::optional<uint64_t>(static_cast<uint64_t>(IntOf(rows[0][0])));
}

}  // namespace keyward::reencrypt
