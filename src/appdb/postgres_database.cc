#include "appdb/postgres_database.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "appdb/sql_text.h"
#include "appdb/url.h"
#include "base/status_macros.h"

namespace keyward::appdb {
namespace {

// See SqliteDatabase: the same bound for the same reason.
constexpr size_t kMaxCachedStatements = 64;

// Type OIDs from the server's catalog (pg_type.dat); stable across versions.
constexpr Oid kBoolOid = 16;
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kFloat4Oid = 700;
constexpr Oid kFloat8Oid = 701;

absl::StatusCode CodeForSqlState(absl::string_view state) {
  if (state == "23505") return absl::StatusCode::kAlreadyExists;
  if (state == "40001" || state == "40P01") return absl::StatusCode::kAborted;
  if (state == "42501") return absl::StatusCode::kPermissionDenied;
  if (state == "25P02") return absl::StatusCode::kFailedPrecondition;
  // statement_timeout (or a cancel request): the server was too slow, the
  // connection is fine, and the statement may be tried again.
  if (state == "57014") return absl::StatusCode::kDeadlineExceeded;
  if (state == "XX001" || state == "XX002") return absl::StatusCode::kDataLoss;
  if (absl::StartsWith(state, "57P")) return absl::StatusCode::kUnavailable;
  const absl::string_view cls = state.substr(0, 2);
  if (cls == "08") return absl::StatusCode::kUnavailable;
  if (cls == "23") return absl::StatusCode::kFailedPrecondition;
  if (cls == "53") return absl::StatusCode::kResourceExhausted;
  if (cls == "42" || cls == "22" || cls == "0A")
    return absl::StatusCode::kInvalidArgument;
  return absl::StatusCode::kInternal;
}

// libpq's messages span lines ("...failed: Connection refused\n\tIs the
// server running..."); errors here are one line.
std::string TrimMessage(const char* message) {
  std::string out;
  bool space = false;
  for (char c : absl::StripAsciiWhitespace(message == nullptr ? "" : message)) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      space = true;
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

Value DecodeValue(const PGresult* res, int row, int col) {
  if (PQgetisnull(res, row, col)) return std::monostate{};
  const char* text = PQgetvalue(res, row, col);
  const auto length = static_cast<size_t>(PQgetlength(res, row, col));
  switch (PQftype(res, col)) {
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid: {
      int64_t v = 0;
      if (absl::SimpleAtoi(absl::string_view(text, length), &v)) return v;
      break;
    }
    case kFloat4Oid:
    case kFloat8Oid:
      // strtod reads PostgreSQL's "NaN", "Infinity" and "-Infinity" too.
      return std::strtod(text, nullptr);
    case kBoolOid:
      return static_cast<int64_t>(text[0] == 't' ? 1 : 0);
    case kByteaOid: {
      size_t n = 0;
      unsigned char* bytes =
          PQunescapeBytea(reinterpret_cast<const unsigned char*>(text), &n);
      if (bytes == nullptr) break;
      Blob blob{std::string(reinterpret_cast<const char*>(bytes), n)};
      PQfreemem(bytes);
      return blob;
    }
    default:
      break;
  }
  return std::string(text, length);
}

std::string DoubleText(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return absl::StrFormat("%.17g", d);
}

void IgnoreNotice(void*, const char*) {}

}  // namespace

void PostgresDatabase::ResultDeleter::operator()(pg_result* r) const {
  PQclear(r);
}

absl::StatusOr<std::unique_ptr<PostgresDatabase>> PostgresDatabase::Open(
    const std::string& url) {
  const std::string redacted = RedactUrlPassword(url);
  // Keywords are applied in order, so the URL (dbname, expanded) overrides
  // the defaults before it.
  const char* keywords[] = {"connect_timeout", "fallback_application_name",
                            "dbname", nullptr};
  const char* values[] = {"10", "keyward", url.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn == nullptr)
    return absl::ResourceExhaustedError(
        "libpq could not allocate a connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    const std::string why =
        ScrubSecret(TrimMessage(PQerrorMessage(conn)), UrlPassword(url));
    PQfinish(conn);
    absl::StatusCode code = absl::StatusCode::kUnavailable;
    if (absl::StrContains(why, "authentication failed")) {
      code = absl::StatusCode::kPermissionDenied;
    } else if (absl::StrContains(why, "does not exist")) {
      code = absl::StatusCode::kNotFound;
    }
    return absl::Status(
        code, absl::StrCat("cannot connect to ", redacted, ": ", why));
  }
  // Server NOTICEs (e.g. "relation already exists, skipping") would
  // otherwise go to stderr.
  PQsetNoticeProcessor(conn, IgnoreNotice, nullptr);
  return std::unique_ptr<PostgresDatabase>(
      new PostgresDatabase(conn, redacted));
}

PostgresDatabase::~PostgresDatabase() { PQfinish(conn_); }

absl::Status PostgresDatabase::ResultError(const PGresult* result,
                                           absl::string_view sql) const {
  if (PQstatus(conn_) == CONNECTION_BAD) {
    return absl::UnavailableError(absl::StrCat(
        redacted_url_, ": the connection was lost (",
        TrimMessage(PQerrorMessage(conn_)), "): ", SqlForMessage(sql)));
  }
  if (result == nullptr) {
    return absl::UnavailableError(
        absl::StrCat(redacted_url_, ": ", TrimMessage(PQerrorMessage(conn_)),
                     ": ", SqlForMessage(sql)));
  }
  const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  const absl::string_view sqlstate = state == nullptr ? "" : state;
  std::string primary =
      TrimMessage(PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY));
  if (primary.empty()) primary = TrimMessage(PQresultErrorMessage(result));
  // Data exceptions quote the offending input ('invalid input syntax for
  // type integer: "…"'), which may be a parameter and so a secret.
  if (absl::StartsWith(sqlstate, "22")) {
    if (size_t quote = primary.find(": \""); quote != std::string::npos)
      primary.resize(quote);
  }
  return absl::Status(CodeForSqlState(sqlstate),
                      absl::StrCat(redacted_url_, ": ", primary, " [SQLSTATE ",
                                   sqlstate, "]: ", SqlForMessage(sql)));
}

void PostgresDatabase::Evict(const std::string& key) {
  auto it = cache_.find(key);
  if (it == cache_.end()) return;
  // Fails harmlessly inside an aborted transaction: the statement then
  // lingers on the server until the connection closes.
  PQclear(PQexec(conn_, absl::StrCat("DEALLOCATE ", it->second.name).c_str()));
  cache_.erase(it);
}

absl::StatusOr<PostgresDatabase::Result> PostgresDatabase::RunOnce(
    absl::string_view sql, const std::vector<Value>& params, bool* stale_plan) {
  *stale_plan = false;
  // Parameters are typed by the server from their use, except bytea, which
  // goes in binary and is declared so (a Blob bound to an untyped `$1`
  // would otherwise be read as text).
  std::string key(sql);
  for (const Value& v : params) {
    if (std::holds_alternative<Blob>(v)) {
      key.push_back('\0');
      absl::StrAppend(&key, &v - params.data());
    }
  }
  auto it = cache_.find(key);
  if (it == cache_.end()) {
    KW_ASSIGN_OR_RETURN(Placeholders placeholders, ScanPlaceholders(sql));
    KW_RETURN_IF_ERROR(
        CheckParameterCount(sql, placeholders.max_index, params.size()));
    std::vector<Oid> types(params.size(), 0);
    for (size_t i = 0; i < params.size(); ++i) {
      if (std::holds_alternative<Blob>(params[i])) types[i] = kByteaOid;
    }
    std::string name = absl::StrCat("kw_", ++next_name_);
    Result prepared(PQprepare(conn_, name.c_str(), std::string(sql).c_str(),
                              static_cast<int>(params.size()), types.data()));
    if (prepared == nullptr ||
        PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) {
      return ResultError(prepared.get(), sql);
    }
    if (cache_.size() >= kMaxCachedStatements) {
      auto oldest = std::min_element(
          cache_.begin(), cache_.end(), [](const auto& a, const auto& b) {
            return a.second.last_used < b.second.last_used;
          });
      Evict(oldest->first);
    }
    it = cache_
             .emplace(key, CachedStatement{std::move(name), 0,
                                           placeholders.max_index})
             .first;
  }
  KW_RETURN_IF_ERROR(
      CheckParameterCount(sql, it->second.parameters, params.size()));
  it->second.last_used = ++clock_;

  std::vector<std::string> texts(params.size());
  std::vector<const char*> values(params.size(), nullptr);
  std::vector<int> lengths(params.size(), 0);
  std::vector<int> formats(params.size(), 0);
  for (size_t i = 0; i < params.size(); ++i) {
    const Value& v = params[i];
    if (const auto* n = std::get_if<int64_t>(&v)) {
      texts[i] = absl::StrCat(*n);
    } else if (const auto* d = std::get_if<double>(&v)) {
      texts[i] = DoubleText(*d);
    } else if (const auto* s = std::get_if<std::string>(&v)) {
      if (s->find('\0') != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat(
            "parameter $", i + 1,
            " is text with a NUL byte, which PostgreSQL text cannot "
            "hold (pass it as a Blob): ",
            SqlForMessage(sql)));
      }
      values[i] = s->c_str();
      continue;
    } else if (const auto* b = std::get_if<Blob>(&v)) {
      values[i] = b->bytes.data();
      lengths[i] = static_cast<int>(b->bytes.size());
      formats[i] = 1;
      continue;
    } else {
      continue;  // NULL
    }
    values[i] = texts[i].c_str();
  }
  Result result(PQexecPrepared(
      conn_, it->second.name.c_str(), static_cast<int>(params.size()),
      values.data(), lengths.data(), formats.data(), /*resultFormat=*/0));
  const ExecStatusType status =
      result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;
  const char* state =
      result ? PQresultErrorField(result.get(), PG_DIAG_SQLSTATE) : nullptr;
  // "cached plan must not change result type": the table changed under a
  // cached statement; it is prepared again (see Run).
  if (state != nullptr && absl::string_view(state) == "0A000") {
    Evict(key);
    *stale_plan = true;
  }
  return ResultError(result.get(), sql);
}

absl::StatusOr<PostgresDatabase::Result> PostgresDatabase::Run(
    absl::string_view sql, const std::vector<Value>& params) {
  bool stale_plan = false;
  auto result = RunOnce(sql, params, &stale_plan);
  // Outside a transaction the failed attempt changed nothing, so it can be
  // repeated with a fresh plan; inside one the transaction is now aborted.
  if (!result.ok() && stale_plan &&
      PQtransactionStatus(conn_) == PQTRANS_IDLE) {
    result = RunOnce(sql, params, &stale_plan);
  }
  return result;
}

absl::StatusOr<uint64_t> PostgresDatabase::Execute(
    absl::string_view sql, const std::vector<Value>& params) {
  KW_ASSIGN_OR_RETURN(Result result, Run(sql, params));
  uint64_t changed = 0;
  const char* tuples = PQcmdTuples(result.get());
  if (tuples != nullptr && *tuples != '\0' &&
      !absl::SimpleAtoi(tuples, &changed))
    changed = 0;
  return changed;
}

absl::StatusOr<std::vector<ResultRow>> PostgresDatabase::Query(
    absl::string_view sql, const std::vector<Value>& params) {
  KW_ASSIGN_OR_RETURN(Result result, Run(sql, params));
  const int rows = PQntuples(result.get());
  const int columns = PQnfields(result.get());
  std::vector<ResultRow> out(static_cast<size_t>(rows));
  for (int r = 0; r < rows; ++r) {
    ResultRow& row = out[static_cast<size_t>(r)];
    row.reserve(static_cast<size_t>(columns));
    for (int c = 0; c < columns; ++c)
      row.push_back(DecodeValue(result.get(), r, c));
  }
  return out;
}

absl::Status PostgresDatabase::Simple(const char* sql) {
  Result result(PQexec(conn_, sql));
  if (result == nullptr || PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
    return ResultError(result.get(), sql);
  }
  return absl::OkStatus();
}

absl::Status PostgresDatabase::Begin() {
  if (PQtransactionStatus(conn_) != PQTRANS_IDLE) {
    return absl::FailedPreconditionError(
        "Begin: a transaction is already open");
  }
  return Simple("BEGIN");
}

absl::Status PostgresDatabase::Commit() {
  switch (PQtransactionStatus(conn_)) {
    case PQTRANS_IDLE:
      return absl::FailedPreconditionError(
          "Commit: no transaction is open (Begin first)");
    case PQTRANS_INERROR:
      // COMMIT would roll back and still report success.
      KW_RETURN_IF_ERROR(Simple("ROLLBACK"));
      return absl::AbortedError(
          "Commit: a statement in the transaction had failed, so it was rolled "
          "back");
    default:
      return Simple("COMMIT");
  }
}

absl::Status PostgresDatabase::Rollback() {
  if (PQtransactionStatus(conn_) == PQTRANS_IDLE) {
    return absl::FailedPreconditionError("Rollback: no transaction is open");
  }
  return Simple("ROLLBACK");
}

absl::StatusOr<std::vector<std::string>> PostgresDatabase::ListTables() {
  KW_ASSIGN_OR_RETURN(
      std::vector<ResultRow> rows,
      Query(
          "SELECT table_name::text FROM information_schema.tables "
          "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
          {}));
  std::vector<std::string> tables;
  for (const ResultRow& row : rows)
    tables.push_back(std::get<std::string>(row[0]));
  std::sort(tables.begin(), tables.end());
  return tables;
}

absl::StatusOr<std::vector<ColumnInfo>> PostgresDatabase::ListColumns(
    absl::string_view table) {
  const std::vector<Value> name = {std::string(table)};
  KW_ASSIGN_OR_RETURN(
      std::vector<ResultRow> rows,
      Query("SELECT column_name::text, data_type::text "
            "FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = $1 "
            "ORDER BY ordinal_position",
            name));
  if (rows.empty()) {
    return absl::NotFoundError(absl::StrCat("no table ", QuoteIdentifier(table),
                                            " in the current schema of ",
                                            redacted_url_));
  }
  KW_ASSIGN_OR_RETURN(std::vector<ResultRow> keys,
                      Query("SELECT a.attname::text FROM pg_index i "
                            "JOIN pg_class c ON c.oid = i.indrelid "
                            "JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "JOIN pg_attribute a ON a.attrelid = c.oid AND "
                            "a.attnum = ANY(i.indkey) "
                            "WHERE i.indisprimary AND c.relname = $1 AND "
                            "n.nspname = current_schema()",
                            name));
  std::vector<ColumnInfo> columns;
  for (const ResultRow& row : rows) {
    ColumnInfo info{
        .name = std::get<std::string>(row[0]),
        .declared_type = absl::AsciiStrToLower(std::get<std::string>(row[1]))};
    for (const ResultRow& key : keys) {
      if (std::get<std::string>(key[0]) == info.name) info.primary_key = true;
    }
    columns.push_back(std::move(info));
  }
  return columns;
}

}  // namespace keyward::appdb
