#include "keystore/sqlite_key_store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keystore/store_common.h"
#include "keyward/errors.h"
#include "nlohmann/json.hpp"

namespace keyward::keystore {
namespace {

constexpr char kSchemaV1[] = R"sql(
CREATE TABLE store_meta (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  environment TEXT NOT NULL,
  created_us INTEGER NOT NULL
);
CREATE TABLE keys (
  name TEXT PRIMARY KEY,
  purpose INTEGER NOT NULL,
  suite INTEGER NOT NULL,
  environment TEXT NOT NULL,
  labels TEXT NOT NULL,
  rotation_period_s INTEGER NOT NULL,
  primary_version INTEGER NOT NULL,
  created_us INTEGER NOT NULL,
  updated_us INTEGER NOT NULL,
  revision INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE key_versions (
  key_name TEXT NOT NULL REFERENCES keys(name),
  version INTEGER NOT NULL,
  state INTEGER NOT NULL,
  protection INTEGER NOT NULL,
  sealed_kek BLOB,
  hsm_key_id TEXT,
  created_us INTEGER NOT NULL,
  destroy_after_us INTEGER,
  destroyed_us INTEGER,
  data_keys_issued INTEGER NOT NULL DEFAULT 0,
  decrypts INTEGER NOT NULL DEFAULT 0,
  last_used_us INTEGER,
  PRIMARY KEY (key_name, version)
) WITHOUT ROWID;
CREATE INDEX key_versions_pending_destruction
  ON key_versions (destroy_after_us) WHERE state = 4;
)sql";

}  // namespace

constexpr char kSchemaV3[] = R"sql(
ALTER TABLE key_versions ADD COLUMN last_decrypt_us INTEGER;
ALTER TABLE key_versions ADD COLUMN drill_sample BLOB;
CREATE TABLE data_set_reports (
  key_name TEXT NOT NULL,
  data_set TEXT NOT NULL,
  rows_per_version TEXT NOT NULL,
  rows_total INTEGER NOT NULL,
  reported_us INTEGER NOT NULL,
  reported_by TEXT NOT NULL,
  PRIMARY KEY (key_name, data_set)
) WITHOUT ROWID;
)sql";

constexpr char kSchemaV4[] = R"sql(
ALTER TABLE key_versions ADD COLUMN state_before_destruction INTEGER;
)sql";

constexpr char kSchemaV2[] = R"sql(
CREATE TABLE grants (
  id TEXT PRIMARY KEY,
  principal TEXT NOT NULL,
  key_pattern TEXT NOT NULL,
  operations TEXT NOT NULL,
  context TEXT NOT NULL,
  created_us INTEGER NOT NULL,
  expires_us INTEGER NOT NULL,
  revoked_us INTEGER,
  created_by TEXT NOT NULL,
  reason TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE sealed_secrets (
  name TEXT PRIMARY KEY,
  sealed BLOB NOT NULL
) WITHOUT ROWID;
)sql";

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

namespace {

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

// Runs `body` inside BEGIN IMMEDIATE ... COMMIT, rolling back on error.
template <typename Body>
absl::Status InTransaction(sqlite3* db, Body body) {
  KW_RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE", "begin transaction"));
  absl::Status status = body();
  if (status.ok()) status = Exec(db, "COMMIT", "commit");
  if (!status.ok()) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  return status;
}

int UserVersion(sqlite3* db) {
  Statement s(db, "PRAGMA user_version");
  return s.Step() == SQLITE_ROW ? static_cast<int>(s.Int(0)) : -1;
}

absl::Status Migrate(sqlite3* db, const std::vector<Migration>& migrations) {
  const int current = UserVersion(db);
  const int latest = migrations.empty() ? 0 : migrations.back().number;
  if (current > latest) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the key store has schema version ", current,
        " but this build knows up to ", latest,
        "; upgrade keywardd (stores are never downgraded)"));
  }
  for (const Migration& m : migrations) {
    if (m.number <= current) continue;
    KW_RETURN_IF_ERROR(InTransaction(db, [&]() -> absl::Status {
      KW_RETURN_IF_ERROR(Exec(db, m.sql, absl::StrCat("migration ", m.number,
                                                      " (", m.description, ")")));
      const std::string pragma = absl::StrCat("PRAGMA user_version = ", m.number);
      return Exec(db, pragma.c_str(), "record schema version");
    }));
  }
  return absl::OkStatus();
}

std::string LabelsToJson(const std::map<std::string, std::string>& labels) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : labels) j[k] = v;
  return j.dump();
}

std::map<std::string, std::string> LabelsFromJson(const std::string& text) {
  std::map<std::string, std::string> labels;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.value().is_string()) labels[it.key()] = it.value();
    }
  }
  return labels;
}

// The smallest string greater than every string starting with `prefix`
// (names are ASCII), or empty when there is none.
std::string PrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(end.back() + 1);
      return end;
    }
    end.pop_back();
  }
  return end;
}

}  // namespace

const std::vector<Migration>& SqliteMigrations() {
  static const auto* migrations = new std::vector<Migration>{
      {1, "keys, key versions and store metadata", kSchemaV1},
      {2, "grants and sealed service secrets", kSchemaV2},
      {3, "last decrypt, rotation drill samples, data set reports", kSchemaV3},
      {4, "the state a version had before it was scheduled for destruction", kSchemaV4},
  };
  return *migrations;
}

absl::StatusOr<std::unique_ptr<SqliteKeyStore>> SqliteKeyStore::Open(
    const std::string& path, const std::string& environment) {
  return OpenWithMigrations(path, environment, SqliteMigrations());
}

absl::StatusOr<std::unique_ptr<SqliteKeyStore>>
SqliteKeyStore::OpenWithMigrations(const std::string& path,
                                   const std::string& environment,
                                   const std::vector<Migration>& migrations) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s = absl::UnavailableError(
        absl::StrCat("cannot open the key store ", path, ": ",
                     db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    sqlite3_close(db);
    return s;
  }
  ::chmod(path.c_str(), 0600);
  auto fail = [&](absl::Status s) {
    sqlite3_close(db);
    return s;
  };
  sqlite3_busy_timeout(db, 5000);
  // Integrity first: a damaged file must not be migrated or written.
  {
    Statement check(db, "PRAGMA quick_check");
    if (!check.ok() || check.Step() != SQLITE_ROW) {
      return fail(absl::DataLossError(absl::StrCat(
          "the key store ", path, " cannot be read (", sqlite3_errmsg(db),
          "); it is not a Keyward store or it is damaged: restore it from a "
          "backup")));
    }
    const std::string verdict = check.Text(0);
    if (verdict != "ok") {
      return fail(absl::DataLossError(absl::StrCat(
          "the key store ", path, " failed its integrity check (", verdict,
          "); restore it from a backup")));
    }
  }
  // 32 MiB of page cache and memory-mapped reads keep lookups flat as the
  // store grows (100,000 keys fit).
  // secure_delete: deleted and overwritten content is zeroed in the file
  // (a destroyed version's sealed KEK must not linger in free pages).
  for (const char* pragma : {"PRAGMA journal_mode = WAL",
                             "PRAGMA synchronous = FULL",
                             "PRAGMA secure_delete = ON",
                             "PRAGMA foreign_keys = ON",
                             "PRAGMA cache_size = -32768",
                             "PRAGMA mmap_size = 268435456"}) {
    if (auto s = Exec(db, pragma, pragma); !s.ok()) return fail(s);
  }
  if (auto s = Migrate(db, migrations); !s.ok()) return fail(s);

  // The store's environment is fixed when it is created.
  std::string stored_env;
  absl::Time created = absl::Now();
  {
    Statement meta(db, "SELECT environment, created_us FROM store_meta WHERE id = 1");
    if (meta.ok() && meta.Step() == SQLITE_ROW) {
      stored_env = meta.Text(0);
      created = absl::FromUnixMicros(meta.Int(1));
    }
  }
  if (stored_env.empty()) {
    Statement insert(db,
                     "INSERT INTO store_meta (id, environment, created_us) "
                     "VALUES (1, ?1, ?2)");
    insert.Bind(1, environment).Bind(2, absl::ToUnixMicros(created));
    if (insert.Step() != SQLITE_DONE) {
      return fail(SqliteError(db, "record the store's environment"));
    }
  } else if (stored_env != environment) {
    return fail(MakeError(
        absl::StatusCode::kFailedPrecondition, ErrorCode::kEnvironmentMismatch,
        absl::StrCat("the key store ", path, " belongs to environment '",
                     stored_env, "' but keywardd is configured for '",
                     environment, "'; each environment has its own store")));
  }
  return std::unique_ptr<SqliteKeyStore>(new SqliteKeyStore(
      db, path, environment, UserVersion(db), created));
}

SqliteKeyStore::SqliteKeyStore(sqlite3* db, std::string path,
                               std::string environment, int schema_version,
                               absl::Time created)
    : db_(db),
      path_(std::move(path)),
      environment_(std::move(environment)),
      schema_version_(schema_version),
      created_(created) {}

SqliteKeyStore::~SqliteKeyStore() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

sqlite3_stmt* SqliteKeyStore::Prepare(const char* sql) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) return it->second;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) != SQLITE_OK) {
    return nullptr;
  }
  statements_.emplace(sql, stmt);
  return stmt;
}

absl::StatusOr<StoreInfo> SqliteKeyStore::GetInfo() {
  return StoreInfo{environment_, absl::StrCat("sqlite:", path_),
                   schema_version_, created_};
}

namespace {
bool SameStoredFields(const KeyVersion& a, const KeyVersion& b) {
  return a.state == b.state && a.protection == b.protection &&
         a.sealed_kek == b.sealed_kek && a.hsm_key_id == b.hsm_key_id &&
         a.created == b.created && a.destroy_after == b.destroy_after &&
         a.destroyed == b.destroyed && a.drill_sample == b.drill_sample &&
         a.state_before_destruction == b.state_before_destruction;
}
}  // namespace

absl::Status SqliteKeyStore::WriteVersionsLocked(const Key& key,
                                                 const Key* stored) {
  for (const KeyVersion& v : key.versions) {
    if (stored != nullptr) {
      const KeyVersion* old = stored->FindVersion(v.version);
      if (old != nullptr && SameStoredFields(*old, v)) continue;
    }
    Statement s(db_, Prepare(
                "INSERT INTO key_versions (key_name, version, state, protection, "
                "sealed_kek, hsm_key_id, created_us, destroy_after_us, "
                "destroyed_us, drill_sample, state_before_destruction) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
                "ON CONFLICT (key_name, version) DO UPDATE SET "
                "state = excluded.state, protection = excluded.protection, "
                "sealed_kek = excluded.sealed_kek, "
                "hsm_key_id = excluded.hsm_key_id, "
                "destroy_after_us = excluded.destroy_after_us, "
                "destroyed_us = excluded.destroyed_us, "
                "drill_sample = excluded.drill_sample, "
                "state_before_destruction = excluded.state_before_destruction"));
    s.Bind(1, key.name)
        .Bind(2, v.version)
        .Bind(3, static_cast<int64_t>(v.state))
        .Bind(4, static_cast<int64_t>(v.protection));
    v.sealed_kek.empty() ? s.BindNull(5) : s.BindBlob(5, v.sealed_kek);
    v.hsm_key_id.empty() ? s.BindNull(6) : s.Bind(6, v.hsm_key_id);
    s.Bind(7, absl::ToUnixMicros(v.created))
        .BindOptionalTime(8, v.destroy_after)
        .BindOptionalTime(9, v.destroyed);
    v.drill_sample.empty() ? s.BindNull(10) : s.BindBlob(10, v.drill_sample);
    v.state_before_destruction
        ? s.Bind(11, static_cast<int64_t>(*v.state_before_destruction))
        : s.BindNull(11);
    if (s.Step() != SQLITE_DONE) return SqliteError(db_, "write key version");
  }
  return absl::OkStatus();
}

absl::Status SqliteKeyStore::CreateKey(const Key& key) {
  KW_RETURN_IF_ERROR(internal::CheckNewKey(key, environment_));
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(db_, [&] { return CreateKeyLocked(key); });
}

absl::Status SqliteKeyStore::CreateKeys(const std::vector<Key>& keys) {
  for (const Key& key : keys) {
    KW_RETURN_IF_ERROR(internal::CheckNewKey(key, environment_));
  }
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(db_, [&]() -> absl::Status {
    for (const Key& key : keys) KW_RETURN_IF_ERROR(CreateKeyLocked(key));
    return absl::OkStatus();
  });
}

absl::Status SqliteKeyStore::CreateKeyLocked(const Key& key) {
  {
    Statement s(db_, Prepare(
                "INSERT INTO keys (name, purpose, suite, environment, labels, "
                "rotation_period_s, primary_version, created_us, updated_us, "
                "revision) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1)"));
    s.Bind(1, key.name)
        .Bind(2, static_cast<int64_t>(key.purpose))
        .Bind(3, static_cast<int64_t>(key.suite))
        .Bind(4, key.environment)
        .Bind(5, LabelsToJson(key.labels))
        .Bind(6, absl::ToInt64Seconds(key.rotation_period))
        .Bind(7, key.primary_version)
        .Bind(8, absl::ToUnixMicros(key.created))
        .Bind(9, absl::ToUnixMicros(key.updated));
    if (s.Step() != SQLITE_DONE) {
      if ((sqlite3_errcode(db_) & 0xff) == SQLITE_CONSTRAINT) {
        return absl::AlreadyExistsError(
            absl::StrCat("a key named '", key.name, "' already exists"));
      }
      return SqliteError(db_, "create key");
    }
  }
  return WriteVersionsLocked(key, nullptr);
}

absl::StatusOr<Key> SqliteKeyStore::LoadKeyLocked(absl::string_view name) {
  Statement s(db_, Prepare(
              "SELECT name, purpose, suite, environment, labels, "
              "rotation_period_s, primary_version, created_us, updated_us, "
              "revision FROM keys WHERE name = ?1"));
  s.Bind(1, name);
  const int rc = s.Step();
  if (rc == SQLITE_DONE) return internal::KeyNotFound(name);
  if (rc != SQLITE_ROW) return SqliteError(db_, "read key");
  Key key;
  key.name = s.Text(0);
  key.purpose = static_cast<KeyPurpose>(s.Int(1));
  key.suite = static_cast<Suite>(s.Int(2));
  key.environment = s.Text(3);
  key.labels = LabelsFromJson(s.Text(4));
  key.rotation_period = absl::Seconds(s.Int(5));
  key.primary_version = static_cast<uint32_t>(s.Int(6));
  key.created = absl::FromUnixMicros(s.Int(7));
  key.updated = absl::FromUnixMicros(s.Int(8));
  key.revision = static_cast<uint64_t>(s.Int(9));
  Statement v(db_, Prepare(
              "SELECT version, state, protection, sealed_kek, hsm_key_id, "
              "created_us, destroy_after_us, destroyed_us, data_keys_issued, "
              "decrypts, last_used_us, last_decrypt_us, drill_sample, "
              "state_before_destruction FROM key_versions "
              "WHERE key_name = ?1 ORDER BY version"));
  v.Bind(1, name);
  int vrc;
  while ((vrc = v.Step()) == SQLITE_ROW) {
    KeyVersion kv;
    kv.version = static_cast<uint32_t>(v.Int(0));
    kv.state = static_cast<VersionState>(v.Int(1));
    kv.protection = static_cast<KekProtection>(v.Int(2));
    kv.sealed_kek = v.Text(3);
    kv.hsm_key_id = v.Text(4);
    kv.created = absl::FromUnixMicros(v.Int(5));
    kv.destroy_after = v.OptionalTime(6);
    kv.destroyed = v.OptionalTime(7);
    kv.usage.data_keys_issued = static_cast<uint64_t>(v.Int(8));
    kv.usage.decrypts = static_cast<uint64_t>(v.Int(9));
    kv.usage.last_used = v.OptionalTime(10);
    kv.usage.last_decrypt = v.OptionalTime(11);
    kv.drill_sample = v.Text(12);
    if (!v.IsNull(13)) kv.state_before_destruction = static_cast<VersionState>(v.Int(13));
    key.versions.push_back(std::move(kv));
  }
  if (vrc != SQLITE_DONE) return SqliteError(db_, "read key versions");
  return key;
}

absl::StatusOr<Key> SqliteKeyStore::GetKey(absl::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  return LoadKeyLocked(name);
}

absl::StatusOr<KeyPage> SqliteKeyStore::ListKeys(absl::string_view prefix,
                                                 int page_size,
                                                 absl::string_view token) {
  KW_RETURN_IF_ERROR(internal::CheckPageSize(page_size));
  std::lock_guard<std::mutex> lock(mu_);
  const std::string end = PrefixEnd(prefix);
  Statement s(db_, Prepare(
              "SELECT name FROM keys WHERE name >= ?1 AND name > ?2 "
              "AND (?3 = '' OR name < ?3) ORDER BY name LIMIT ?4"));
  s.Bind(1, prefix).Bind(2, token).Bind(3, end).Bind(4, page_size + 1);
  std::vector<std::string> names;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) names.push_back(s.Text(0));
  if (rc != SQLITE_DONE) return SqliteError(db_, "list keys");
  KeyPage page;
  for (size_t i = 0; i < names.size() && static_cast<int>(i) < page_size; ++i) {
    KW_ASSIGN_OR_RETURN(Key key, LoadKeyLocked(names[i]));
    page.keys.push_back(std::move(key));
  }
  if (static_cast<int>(names.size()) > page_size) {
    page.next_page_token = internal::NextPageToken(page.keys.back().name);
  }
  return page;
}

absl::Status SqliteKeyStore::UpdateKey(const Key& key) {
  KW_RETURN_IF_ERROR(ValidateKey(key));
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(db_, [&]() -> absl::Status {
    Statement rev(db_, Prepare( "SELECT revision FROM keys WHERE name = ?1"));
    rev.Bind(1, key.name);
    const int rc = rev.Step();
    if (rc == SQLITE_DONE) return internal::KeyNotFound(key.name);
    if (rc != SQLITE_ROW) return SqliteError(db_, "read revision");
    if (static_cast<uint64_t>(rev.Int(0)) != key.revision) {
      return internal::RevisionConflict(key.name);
    }
    KW_ASSIGN_OR_RETURN(Key stored, LoadKeyLocked(key.name));
    if (stored.versions.size() > key.versions.size()) {
      return absl::InvalidArgumentError("versions are never removed");
    }
    Statement s(db_, Prepare(
                "UPDATE keys SET labels = ?2, rotation_period_s = ?3, "
                "primary_version = ?4, updated_us = ?5, suite = ?6, "
                "revision = revision + 1 WHERE name = ?1"));
    s.Bind(1, key.name)
        .Bind(2, LabelsToJson(key.labels))
        .Bind(3, absl::ToInt64Seconds(key.rotation_period))
        .Bind(4, key.primary_version)
        .Bind(5, absl::ToUnixMicros(key.updated))
        .Bind(6, static_cast<int64_t>(key.suite));
    if (s.Step() != SQLITE_DONE) return SqliteError(db_, "update key");
    return WriteVersionsLocked(key, &stored);
  });
}

absl::Status SqliteKeyStore::AddUsage(const std::vector<UsageDelta>& deltas) {
  if (deltas.empty()) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(db_, [&]() -> absl::Status {
    for (const UsageDelta& d : deltas) {
      Statement one(db_, Prepare(
                    "UPDATE key_versions SET "
                    "data_keys_issued = data_keys_issued + ?3, "
                    "decrypts = decrypts + ?4, "
                    "last_used_us = MAX(COALESCE(last_used_us, 0), ?5), "
                    "last_decrypt_us = CASE WHEN ?6 IS NULL THEN last_decrypt_us "
                    "ELSE MAX(COALESCE(last_decrypt_us, 0), ?6) END "
                    "WHERE key_name = ?1 AND version = ?2"));
      one.Bind(1, d.key_name)
          .Bind(2, d.version)
          .Bind(3, static_cast<int64_t>(d.data_keys_issued))
          .Bind(4, static_cast<int64_t>(d.decrypts))
          .Bind(5, absl::ToUnixMicros(d.last_used));
      if (d.last_decrypt == absl::InfinitePast()) {
        one.BindNull(6);
      } else {
        one.Bind(6, absl::ToUnixMicros(d.last_decrypt));
      }
      if (one.Step() != SQLITE_DONE) return SqliteError(db_, "add usage");
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<uint64_t> SqliteKeyStore::AddDataKeysIssued(absl::string_view key_name,
                                                           uint32_t version, int64_t delta,
                                                           uint64_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t count = 0;
  KW_RETURN_IF_ERROR(InTransaction(db_, [&]() -> absl::Status {
    Statement read(db_, Prepare("SELECT data_keys_issued FROM key_versions "
                                "WHERE key_name = ?1 AND version = ?2"));
    read.Bind(1, key_name).Bind(2, version);
    const int rc = read.Step();
    if (rc == SQLITE_DONE) {
      return absl::NotFoundError(
          absl::StrCat("key ", key_name, " has no version ", version));
    }
    if (rc != SQLITE_ROW) return SqliteError(db_, "read data key count");
    const uint64_t now = static_cast<uint64_t>(read.Int(0));
    if (delta > 0 && now + static_cast<uint64_t>(delta) > limit) {
      return absl::ResourceExhaustedError("over the version's data key limit");
    }
    count = delta >= 0 ? now + static_cast<uint64_t>(delta)
                       : now - std::min(now, static_cast<uint64_t>(-delta));
    Statement write(db_, Prepare("UPDATE key_versions SET data_keys_issued = ?3 "
                                 "WHERE key_name = ?1 AND version = ?2"));
    write.Bind(1, key_name).Bind(2, version).Bind(3, static_cast<int64_t>(count));
    if (write.Step() != SQLITE_DONE) return SqliteError(db_, "write data key count");
    return absl::OkStatus();
  }));
  return count;
}

absl::Status SqliteKeyStore::Scrub() {
  std::lock_guard<std::mutex> lock(mu_);
  // TRUNCATE copies every frame into the database (whose freed content
  // secure_delete has zeroed) and cuts the log to nothing.  It cannot
  // finish while a reader holds an old snapshot; keywardd holds the only
  // connection, so a retry after the busy timeout is enough.
  for (int attempt = 0; attempt < 3; ++attempt) {
    int log_frames = -1, checkpointed = -1;
    const int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE,
                                             &log_frames, &checkpointed);
    if (rc == SQLITE_OK && log_frames == 0) return absl::OkStatus();
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) return SqliteError(db_, "checkpoint the WAL");
  }
  return absl::UnavailableError(
      "the key store's write-ahead log could not be truncated (another process holds it "
      "open); the destroyed key material stays in it until the next checkpoint");
}

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

absl::StatusOr<std::vector<VersionRef>> SqliteKeyStore::ListDueDestructions(
    absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, Prepare(
              "SELECT key_name, version FROM key_versions WHERE (state = 4 "
              "AND destroy_after_us <= ?1) OR (state = 5 AND hsm_key_id IS NOT NULL "
              "AND hsm_key_id != '') ORDER BY destroy_after_us"));
  s.Bind(1, absl::ToUnixMicros(now));
  std::vector<VersionRef> due;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    due.push_back({s.Text(0), static_cast<uint32_t>(s.Int(1))});
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, "list due destructions");
  return due;
}

absl::Status SqliteKeyStore::PutDataSetReport(const DataSetReport& r) {
  nlohmann::json counts = nlohmann::json::object();
  for (const auto& [version, rows] : r.rows_per_version) counts[std::to_string(version)] = rows;
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, Prepare(
              "INSERT INTO data_set_reports (key_name, data_set, rows_per_version, "
              "rows_total, reported_us, reported_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
              "ON CONFLICT (key_name, data_set) DO UPDATE SET "
              "rows_per_version = excluded.rows_per_version, "
              "rows_total = excluded.rows_total, reported_us = excluded.reported_us, "
              "reported_by = excluded.reported_by"));
  s.Bind(1, r.key_name)
      .Bind(2, r.data_set)
      .Bind(3, counts.dump())
      .Bind(4, static_cast<int64_t>(r.rows_total))
      .Bind(5, absl::ToUnixMicros(r.reported))
      .Bind(6, r.reported_by);
  if (s.Step() != SQLITE_DONE) return SqliteError(db_, "store data set report");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<DataSetReport>> SqliteKeyStore::ListDataSetReports(
    absl::string_view key_name) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, Prepare(
              "SELECT data_set, rows_per_version, rows_total, reported_us, reported_by "
              "FROM data_set_reports WHERE key_name = ?1 ORDER BY data_set"));
  s.Bind(1, key_name);
  std::vector<DataSetReport> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    DataSetReport r;
    r.key_name = std::string(key_name);
    r.data_set = s.Text(0);
    auto counts = nlohmann::json::parse(s.Text(1), nullptr, false);
    if (counts.is_object()) {
      for (const auto& [version, rows] : counts.items()) {
        r.rows_per_version[static_cast<uint32_t>(std::stoul(version))] =
            rows.is_number_unsigned() ? rows.get<uint64_t>() : 0;
      }
    }
    r.rows_total = static_cast<uint64_t>(s.Int(2));
    r.reported = absl::FromUnixMicros(s.Int(3));
    r.reported_by = s.Text(4);
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, "list data set reports");
  return out;
}

absl::StatusOr<int64_t> SqliteKeyStore::CountKeys() {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, Prepare( "SELECT COUNT(*) FROM keys"));
  if (s.Step() != SQLITE_ROW) return SqliteError(db_, "count keys");
  return s.Int(0);
}

absl::Status SqliteKeyStore::CreateGrant(const policy::Grant& g) {
  nlohmann::json ops = g.operations;
  nlohmann::json ctx = nlohmann::json::object();
  for (const auto& [k, v] : g.context) ctx[k] = v;
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(db_, [&]() -> absl::Status {
    Statement s(db_, Prepare(
        "INSERT INTO grants (id, principal, key_pattern, operations, context, "
        "created_us, expires_us, created_by, reason) VALUES "
        "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
    s.Bind(1, g.id).Bind(2, g.principal).Bind(3, g.key).Bind(4, ops.dump())
        .Bind(5, ctx.dump()).Bind(6, absl::ToUnixMicros(g.created))
        .Bind(7, absl::ToUnixMicros(g.expires)).Bind(8, g.created_by).Bind(9, g.reason);
    if (s.Step() != SQLITE_DONE) {
      if ((sqlite3_errcode(db_) & 0xff) == SQLITE_CONSTRAINT) {
        return absl::AlreadyExistsError(absl::StrCat("grant ", g.id, " exists"));
      }
      return SqliteError(db_, "create grant");
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<policy::Grant>> SqliteKeyStore::ListGrants(
    absl::Time now, bool include_inactive) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, Prepare(
      "SELECT id, principal, key_pattern, operations, context, created_us, "
      "expires_us, revoked_us, created_by, reason FROM grants WHERE "
      "?1 = 1 OR (revoked_us IS NULL AND expires_us > ?2) ORDER BY created_us"));
  s.Bind(1, include_inactive ? 1 : 0).Bind(2, absl::ToUnixMicros(now));
  std::vector<policy::Grant> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    policy::Grant g;
    g.id = s.Text(0);
    g.principal = s.Text(1);
    g.key = s.Text(2);
    auto ops = nlohmann::json::parse(s.Text(3), nullptr, false);
    if (ops.is_array()) {
      for (const auto& o : ops) g.operations.push_back(o.get<std::string>());
    }
    auto ctx = nlohmann::json::parse(s.Text(4), nullptr, false);
    if (ctx.is_object()) {
      for (auto it = ctx.begin(); it != ctx.end(); ++it) g.context[it.key()] = it.value();
    }
    g.created = absl::FromUnixMicros(s.Int(5));
    g.expires = absl::FromUnixMicros(s.Int(6));
    g.revoked = s.OptionalTime(7);
    g.created_by = s.Text(8);
    g.reason = s.Text(9);
    out.push_back(std::move(g));
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, "list grants");
  return out;
}

absl::Status SqliteKeyStore::RevokeGrant(absl::string_view id, absl::Time when) {
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(db_, [&]() -> absl::Status {
    Statement q(db_, Prepare("SELECT revoked_us FROM grants WHERE id = ?1"));
    q.Bind(1, id);
    const int rc = q.Step();
    if (rc == SQLITE_DONE) return absl::NotFoundError(absl::StrCat("no grant ", id));
    if (rc != SQLITE_ROW) return SqliteError(db_, "read grant");
    if (!q.IsNull(0)) {
      return absl::FailedPreconditionError(absl::StrCat("grant ", id, " is already revoked"));
    }
    Statement u(db_, Prepare("UPDATE grants SET revoked_us = ?2 WHERE id = ?1"));
    u.Bind(1, id).Bind(2, absl::ToUnixMicros(when));
    if (u.Step() != SQLITE_DONE) return SqliteError(db_, "revoke grant");
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
