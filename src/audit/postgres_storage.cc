#include "audit/postgres_storage.h"

#include <algorithm>
#include <mutex>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "appdb/postgres_database.h"
#include "audit/audit_log.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "crypto/signature.h"

namespace keyward::audit {
namespace {

using appdb::Database;
using appdb::ResultRow;
using appdb::Value;

constexpr int64_t kLoadPage = 10000;

constexpr const char* kSchema[] = {
    "CREATE TABLE IF NOT EXISTS keyward_audit_logs ("
    " log_id text PRIMARY KEY, environment text NOT NULL,"
    " created timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE IF NOT EXISTS keyward_audit_records ("
    " log_id text NOT NULL, idx bigint NOT NULL, line text NOT NULL,"
    " PRIMARY KEY (log_id, idx))",
    "CREATE TABLE IF NOT EXISTS keyward_audit_checkpoints ("
    " log_id text NOT NULL, n bigint NOT NULL, tree_size bigint NOT NULL, line "
    "text NOT NULL,"
    " PRIMARY KEY (log_id, n))",
    "CREATE TABLE IF NOT EXISTS keyward_audit_keys ("
    " log_id text NOT NULL, fingerprint text NOT NULL, pem text NOT NULL,"
    " PRIMARY KEY (log_id, fingerprint))",
};

absl::Status CheckLogId(const std::string& id) {
  const bool ok =
      !id.empty() && id.size() <= 128 &&
      std::all_of(id.begin(), id.end(), [](char c) {
        return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
               absl::string_view("._:@-").find(c) != absl::string_view::npos;
      });
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("audit log id \"", id,
                   "\" is not 1-128 characters of letters, digits and ._:@- "
                   "(use the replica's name)"));
}

// A PostgreSQL text[] literal: {"a","b"} with " and \ escaped.
std::string TextArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.push_back('"');
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

int64_t Int(const Value& v) {
  const auto* n = std::get_if<int64_t>(&v);
  return n == nullptr ? 0 : *n;
}

std::string Text(const Value& v) {
  const auto* s = std::get_if<std::string>(&v);
  return s == nullptr ? std::string() : *s;
}

absl::StatusOr<std::vector<std::string>> Lines(
    Database& db, absl::string_view sql, const std::vector<Value>& params) {
  KW_ASSIGN_OR_RETURN(std::vector<ResultRow> rows, db.Query(sql, params));
  std::vector<std::string> out;
  out.reserve(rows.size());
  for (ResultRow& row : rows) out.push_back(Text(row[0]));
  return out;
}

constexpr char kReadRecords[] =
    "SELECT line FROM keyward_audit_records WHERE log_id = $1 AND idx >= $2 "
    "ORDER BY idx LIMIT $3";
constexpr char kReadCheckpoints[] =
    "SELECT line FROM keyward_audit_checkpoints WHERE log_id = $1 ORDER BY n";

class PostgresLogStorage final : public LogStorage {
 public:
  explicit PostgresLogStorage(PostgresAuditOptions options)
      : options_(std::move(options)) {}

  // Connects (again) and takes the log's advisory lock; after a
  // reconnection the next append first checks what the log holds.
  absl::Status Connect() {
    writer_.reset();
    KW_ASSIGN_OR_RETURN(std::unique_ptr<Database> db,
                        appdb::PostgresDatabase::Open(options_.url));
    KW_ASSIGN_OR_RETURN(
        std::vector<ResultRow> locked,
        db->Query("SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                  {LockName()}));
    if (locked.empty() || Int(locked[0][0]) != 1) {
      return absl::FailedPreconditionError(absl::StrCat(
          "audit log \"", options_.log_id, "\" in ", db->RedactedUrl(),
          " is being written by another session (another keywardd replica with "
          "the same "
          "name, or this replica's previous connection, which the server has "
          "not yet "
          "ended); every replica needs a log id of its own"));
    }
    writer_ = std::move(db);
    check_ = true;
    return absl::OkStatus();
  }

  absl::Status CreateSchema() {
    Database& db = *writer_;
    KW_RETURN_IF_ERROR(db.Begin());
    absl::Status s = [&]() -> absl::Status {
      // Concurrent first starts: one creates, the others wait and see it.
      KW_RETURN_IF_ERROR(db.Query("SELECT "
                                  "pg_advisory_xact_lock(hashtextextended('"
                                  "keyward_audit_schema', 0))",
                                  {})
                             .status());
      for (const char* sql : kSchema)
        KW_RETURN_IF_ERROR(db.Execute(sql, {}).status());
      return db.Commit();
    }();
    if (!s.ok()) (void)db.Rollback();
    return s;
  }

  absl::Status Load(
      const std::function<absl::Status(absl::string_view)>& record,
      const std::function<absl::Status(absl::string_view)>& checkpoint)
      override {
    std::lock_guard<std::mutex> lock(mu_);
    KW_RETURN_IF_ERROR(EnsureConnected());
    // Paged by index: the records' own sequence numbers (checked by
    // `record`) tell a missing row, not the paging.
    int64_t next = 0;
    for (;;) {
      KW_ASSIGN_OR_RETURN(
          std::vector<ResultRow> page,
          writer_->Query(
              "SELECT idx, line FROM keyward_audit_records "
              "WHERE log_id = $1 AND idx >= $2 ORDER BY idx LIMIT $3",
              {options_.log_id, next, kLoadPage}));
      for (const ResultRow& row : page) {
        KW_RETURN_IF_ERROR(record(Text(row[1])));
        next = Int(row[0]) + 1;
      }
      if (static_cast<int64_t>(page.size()) < kLoadPage) break;
    }
    KW_ASSIGN_OR_RETURN(std::vector<std::string> checkpoints,
                        Lines(*writer_, kReadCheckpoints, {options_.log_id}));
    for (const std::string& line : checkpoints)
      KW_RETURN_IF_ERROR(checkpoint(line));
    KW_ASSIGN_OR_RETURN(
        std::vector<ResultRow> listed,
        writer_->Query("SELECT 1 FROM keyward_audit_logs WHERE log_id = $1",
                       {options_.log_id}));
    listed_ = !listed.empty();
    check_ = false;
    return absl::OkStatus();
  }

  absl::Status AppendRecords(uint64_t first, std::vector<std::string>* lines,
                             bool* stored_earlier) override {
    std::lock_guard<std::mutex> lock(mu_);
    absl::Status s = AppendLocked(first, lines, stored_earlier);
    if (!s.ok()) {
      // The transaction's fate may be unknown: a new session checks first.
      writer_.reset();
      return absl::UnavailableError(s.message());
    }
    return s;
  }

  absl::Status AppendCheckpoint(const std::string& line) override {
    std::lock_guard<std::mutex> lock(mu_);
    absl::Status s = [&]() -> absl::Status {
      KW_RETURN_IF_ERROR(EnsureConnected());
      KW_ASSIGN_OR_RETURN(Checkpoint c, ParseCheckpoint(line));
      return writer_
          ->Execute(
              "INSERT INTO keyward_audit_checkpoints (log_id, n, tree_size, "
              "line) "
              "SELECT $1, coalesce(max(n), 0) + 1, $2, $3 "
              "FROM keyward_audit_checkpoints WHERE log_id = $1",
              {options_.log_id, static_cast<int64_t>(c.tree_size), line})
          .status();
    }();
    if (!s.ok()) writer_.reset();
    return s;
  }

  absl::Status PublishKey(const std::string& public_key_pem) override {
    KW_ASSIGN_OR_RETURN(std::string fingerprint,
                        crypto::PublicKeyFingerprint(public_key_pem));
    std::lock_guard<std::mutex> lock(mu_);
    KW_RETURN_IF_ERROR(EnsureConnected());
    return writer_
        ->Execute(
            "INSERT INTO keyward_audit_keys (log_id, fingerprint, pem) "
            "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            {options_.log_id, fingerprint, public_key_pem})
        .status();
  }

  absl::StatusOr<std::vector<std::string>> ReadRecords(
      uint64_t from, uint64_t count) const override {
    // A connection of its own: readers do not wait for the writer's COMMIT.
    std::lock_guard<std::mutex> lock(read_mu_);
    if (reader_ == nullptr) {
      KW_ASSIGN_OR_RETURN(reader_, appdb::PostgresDatabase::Open(options_.url));
    }
    auto lines = Lines(*reader_, kReadRecords,
                       {options_.log_id, static_cast<int64_t>(from),
                        static_cast<int64_t>(count)});
    if (!lines.ok()) {
      reader_.reset();
      return lines.status();
    }
    if (lines->size() != count) {
      return absl::DataLossError(absl::StrCat(
          "audit log \"", options_.log_id, "\": records ", from, "..",
          from + count - 1, " were acknowledged but ", lines->size(),
          " of them are in the database: rows were "
          "deleted; check with `",
          VerifyCommand(), "`"));
    }
    return lines;
  }

  std::string Describe() const override {
    return absl::StrCat("audit log \"", options_.log_id, "\" in PostgreSQL");
  }
  std::string VerifyCommand() const override {
    return absl::StrCat("keyward audit verify --db URL --log-id ",
                        options_.log_id);
  }

 private:
  std::string LockName() const {
    return absl::StrCat("keyward_audit_log:", options_.log_id);
  }

  absl::Status EnsureConnected() {
    if (writer_ != nullptr) return absl::OkStatus();
    absl::Status s = Connect();
    // Appends retry; a lock held elsewhere is a reason to fail closed, not
    // a different kind of error.
    if (absl::IsFailedPrecondition(s))
      return absl::UnavailableError(s.message());
    return s;
  }

  absl::Status AppendLocked(uint64_t first, std::vector<std::string>* lines,
                            bool* stored_earlier) {
    KW_RETURN_IF_ERROR(EnsureConnected());
    Database& db = *writer_;
    if (check_) {
      // The last attempt's outcome is unknown (or another session may have
      // held the lock meanwhile): what does the log hold now?
      KW_ASSIGN_OR_RETURN(std::vector<ResultRow> rows,
                          db.Query("SELECT coalesce(max(idx) + 1, 0), count(*) "
                                   "FROM keyward_audit_records "
                                   "WHERE log_id = $1",
                                   {options_.log_id}));
      const auto held = static_cast<uint64_t>(Int(rows[0][0]));
      if (held == first + lines->size()) {
        KW_ASSIGN_OR_RETURN(std::vector<std::string> stored,
                            Lines(db, kReadRecords,
                                  {options_.log_id, static_cast<int64_t>(first),
                                   static_cast<int64_t>(lines->size())}));
        if (stored.size() != lines->size()) {
          return absl::DataLossError("the audit log has gaps");
        }
        Log(LogLevel::kInfo, "audit",
            "a batch of records whose commit was not confirmed had landed; not "
            "writing it again",
            {{"log_id", options_.log_id},
             {"records", absl::StrCat(stored.size())}});
        *lines = std::move(stored);
        *stored_earlier = true;
        check_ = false;
        listed_ = true;
        return absl::OkStatus();
      }
      if (held != first || static_cast<uint64_t>(Int(rows[0][1])) != held) {
        return absl::DataLossError(absl::StrCat(
            Describe(), " holds records up to index ", held,
            " but this keywardd wrote ", first,
            ": another process wrote or deleted records; refusing to write (",
            VerifyCommand(), ")"));
      }
      check_ = false;
    }
    KW_RETURN_IF_ERROR(db.Begin());
    absl::Status s = [&]() -> absl::Status {
      if (!listed_) {
        KW_RETURN_IF_ERROR(
            db.Execute("INSERT INTO keyward_audit_logs (log_id, environment) "
                       "VALUES ($1, $2) ON CONFLICT DO NOTHING",
                       {options_.log_id, options_.environment})
                .status());
      }
      KW_RETURN_IF_ERROR(
          db.Execute("INSERT INTO keyward_audit_records (log_id, idx, line) "
                     "SELECT $1, $2::bigint + t.o - 1, t.l "
                     "FROM unnest($3::text[]) WITH ORDINALITY AS t(l, o)",
                     {options_.log_id, static_cast<int64_t>(first),
                      TextArray(*lines)})
              .status());
      return db.Commit();
    }();
    if (!s.ok()) {
      check_ = true;  // COMMIT may have reached the server
      return s;
    }
    listed_ = true;
    return absl::OkStatus();
  }

  const PostgresAuditOptions options_;
  std::mutex mu_;
  std::unique_ptr<Database>
      writer_;           // GUARDED_BY(mu_): holds the advisory lock
  bool check_ = false;   // GUARDED_BY(mu_): verify what landed first
  bool listed_ = false;  // GUARDED_BY(mu_)
  mutable std::mutex read_mu_;
  mutable std::unique_ptr<Database> reader_;  // GUARDED_BY(read_mu_)
};

}  // namespace

absl::StatusOr<std::shared_ptr<LogStorage>> OpenPostgresAuditStorage(
    const PostgresAuditOptions& options) {
  KW_RETURN_IF_ERROR(CheckLogId(options.log_id));
  auto storage = std::make_shared<PostgresLogStorage>(options);
  KW_RETURN_IF_ERROR(storage->Connect());
  KW_RETURN_IF_ERROR(storage->CreateSchema());
  return storage;
}

PostgresAuditReader::PostgresAuditReader(std::unique_ptr<Database> db)
    : db_(std::move(db)) {}
PostgresAuditReader::~PostgresAuditReader() = default;

absl::StatusOr<std::unique_ptr<PostgresAuditReader>> PostgresAuditReader::Open(
    const std::string& url) {
  KW_ASSIGN_OR_RETURN(std::unique_ptr<Database> db,
                      appdb::PostgresDatabase::Open(url));
  KW_ASSIGN_OR_RETURN(std::vector<std::string> tables, db->ListTables());
  if (std::find(tables.begin(), tables.end(), "keyward_audit_records") ==
      tables.end()) {
    return absl::NotFoundError(
        absl::StrCat("no audit logs in ", db->RedactedUrl(),
                     " (no keyward_audit_records table): is this the database "
                     "keywardd's audit.postgres_url "
                     "names?"));
  }
  return std::unique_ptr<PostgresAuditReader>(
      new PostgresAuditReader(std::move(db)));
}

std::string PostgresAuditReader::RedactedUrl() const {
  return db_->RedactedUrl();
}

absl::StatusOr<std::vector<std::string>> PostgresAuditReader::LogIds() {
  return Lines(
      *db_,
      "SELECT log_id FROM keyward_audit_logs UNION "
      "SELECT DISTINCT log_id FROM keyward_audit_records UNION "
      "SELECT DISTINCT log_id FROM keyward_audit_checkpoints ORDER BY 1",
      {});
}

absl::StatusOr<StoredAuditLog> PostgresAuditReader::Load(
    const std::string& log_id) {
  StoredAuditLog log;
  log.log_id = log_id;
  // One snapshot: a log being written is read as of one moment.
  KW_RETURN_IF_ERROR(db_->Begin());
  absl::Status s = [&]() -> absl::Status {
    KW_RETURN_IF_ERROR(
        db_->Execute(
               "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", {})
            .status());
    KW_ASSIGN_OR_RETURN(
        std::vector<ResultRow> listed,
        db_->Query("SELECT 1 FROM keyward_audit_logs WHERE log_id = $1",
                   {log_id}));
    log.listed = !listed.empty();
    KW_ASSIGN_OR_RETURN(
        log.records,
        Lines(*db_,
              "SELECT line FROM keyward_audit_records WHERE log_id = $1 "
              "ORDER BY idx",
              {log_id}));
    KW_ASSIGN_OR_RETURN(log.checkpoints,
                        Lines(*db_, kReadCheckpoints, {log_id}));
    KW_ASSIGN_OR_RETURN(
        log.keys_pem,
        Lines(*db_, "SELECT pem FROM keyward_audit_keys WHERE log_id = $1",
              {log_id}));
    return absl::OkStatus();
  }();
  if (!s.ok()) {
    (void)db_->Rollback();
    return s;
  }
  KW_RETURN_IF_ERROR(db_->Commit());
  return log;
}

}  // namespace keyward::audit
