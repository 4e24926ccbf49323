// The SQLite backend of Database (sqlite3 C API).
#ifndef KEYWARD_APPDB_SQLITE_DATABASE_H_
#define KEYWARD_APPDB_SQLITE_DATABASE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "appdb/database.h"

struct sqlite3;
struct sqlite3_stmt;

namespace keyward::appdb {

class SqliteDatabase final : public Database {
 public:
  // Opens the file at `path` (`:memory:` for a private in-memory database).
  // Without `create` a missing file is kNotFound.  Sets a 5 s busy timeout
  // and, when the file is writable, WAL journaling.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SqliteDatabase>> Open(
      const std::string& path, bool create);
  ~SqliteDatabase() override;

  Dialect dialect() const override { return Dialect::kSqlite; }
  std::string RedactedUrl() const override { return "sqlite:" + path_; }

  absl::StatusOr<uint64_t> Execute(absl::string_view sql,
                                   const std::vector<Value>& params) override;
  absl::StatusOr<std::vector<ResultRow>> Query(
      absl::string_view sql, const std::vector<Value>& params) override;
  absl::Status Begin() override;
  absl::Status Commit() override;
  absl::Status Rollback() override;
  absl::StatusOr<std::vector<std::string>> ListTables() override;
  absl::StatusOr<std::vector<ColumnInfo>> ListColumns(
      absl::string_view table) override;

 private:
  struct CachedStatement {
    sqlite3_stmt* stmt = nullptr;
    uint64_t last_used = 0;
  };
  // A prepared statement from the cache; reset and unbound when released.
  class Lease;

  SqliteDatabase(sqlite3* db, std::string path)
      : db_(db), path_(std::move(path)) {}

  // Prepares `sql` (or finds it in the cache) and binds `params`.
  absl::StatusOr<sqlite3_stmt*> Prepare(absl::string_view sql,
                                        const std::vector<Value>& params);
  absl::Status StatementError(int rc, absl::string_view what,
                              absl::string_view sql) const;
  absl::Status Exec(const char* sql);

  sqlite3* db_;
  const std::string path_;
  absl::flat_hash_map<std::string, CachedStatement> cache_;
  uint64_t clock_ = 0;
};

}  // namespace keyward::appdb

#endif  // KEYWARD_APPDB_SQLITE_DATABASE_H_
