// The PostgreSQL backend of Database (libpq).
#ifndef KEYWARD_APPDB_POSTGRES_DATABASE_H_
#define KEYWARD_APPDB_POSTGRES_DATABASE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "appdb/database.h"

struct pg_conn;
struct pg_result;

namespace keyward::appdb {

class PostgresDatabase final : public Database {
 public:
  // Connects to `url` (libpq URI; its own connect_timeout wins over the
  // default of 10 s).  Errors: kUnavailable when the server cannot be
  // reached, kNotFound for a database that does not exist, kPermissionDenied
  // when authentication fails; messages carry the URL without its password.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PostgresDatabase>> Open(
      const std::string& url);
  ~PostgresDatabase() override;

  Dialect dialect() const override { return Dialect::kPostgres; }
  std::string RedactedUrl() const override { return redacted_url_; }

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
  struct ResultDeleter {
    void operator()(pg_result* r) const;
  };
  using Result = std::unique_ptr<pg_result, ResultDeleter>;
  struct CachedStatement {
    std::string name;  // "kw_1", "kw_2", … on this connection
    uint64_t last_used = 0;
    int parameters = 0;  // the highest $N in the SQL
  };

  PostgresDatabase(pg_conn* conn, std::string redacted_url)
      : conn_(conn), redacted_url_(std::move(redacted_url)) {}

  // Runs `sql` as a prepared statement from the cache (preparing it on first
  // use) and returns its result; prepares it again once when the server
  // says its cached plan went stale.
  absl::StatusOr<Result> Run(absl::string_view sql,
                             const std::vector<Value>& params);
  absl::StatusOr<Result> RunOnce(absl::string_view sql,
                                 const std::vector<Value>& params,
                                 bool* stale_plan);
  // A simple-protocol statement without parameters (BEGIN, COMMIT, …).
  absl::Status Simple(const char* sql);
  absl::Status ResultError(const pg_result* result,
                           absl::string_view sql) const;
  void Evict(const std::string& key);

  pg_conn* conn_;
  const std::string redacted_url_;
  absl::flat_hash_map<std::string, CachedStatement> cache_;
  uint64_t clock_ = 0;
  uint64_t next_name_ = 0;
};

}  // namespace keyward::appdb

#endif  // KEYWARD_APPDB_POSTGRES_DATABASE_H_
