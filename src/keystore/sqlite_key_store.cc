// Opening the SQLite key store (integrity check, durability settings,
// migrations, the store's environment) and its connection and statements.
#include "keystore/sqlite_key_store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keystore/sqlite_schema.h"
#include "keystore/sqlite_statement.h"
#include "keystore/store_common.h"

namespace keyward::keystore {

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
  } else if (auto s = internal::CheckStoreEnvironment(path, stored_env, environment);
             !s.ok()) {
    return fail(s);
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

}  // namespace keyward::keystore
