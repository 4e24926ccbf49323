// The PostgreSQL key store's connections: a small pool of libpq connections
// (appdb::PostgresDatabase), each used by one thread at a time, and the one
// place that decides when a failed operation may run again.
#ifndef KEYWARD_KEYSTORE_POSTGRES_CONNECTION_POOL_H_
#define KEYWARD_KEYSTORE_POSTGRES_CONNECTION_POOL_H_

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "appdb/database.h"

namespace keyward::appdb {
class PostgresDatabase;
}

namespace keyward::keystore {

// The parameters of one statement.  Built with emplace so that no Value
// temporaries are copied (GCC 12 warns falsely about those).
class SqlParams {
 public:
  SqlParams& Text(absl::string_view s);
  SqlParams& Int(int64_t n);
  SqlParams& Bytes(absl::string_view b);          // bytea
  SqlParams& OptionalBytes(absl::string_view b);  // bytea; empty is NULL
  SqlParams& Null();
  SqlParams& Time(absl::Time t);  // microseconds since the epoch
  SqlParams& OptionalTime(const std::optional<absl::Time>& t);
  const std::vector<appdb::Value>& values() const { return values_; }

 private:
  std::vector<appdb::Value> values_;
};

// One result row, read by column type.  NULL reads as empty / 0.
class SqlRow {
 public:
  explicit SqlRow(const appdb::ResultRow& row) : row_(row) {}
  bool IsNull(size_t col) const;
  std::string Text(size_t col) const;  // text or bytea
  int64_t Int(size_t col) const;
  absl::Time Time(size_t col) const;
  std::optional<absl::Time> OptionalTime(size_t col) const;

 private:
  const appdb::ResultRow& row_;
};

// Whether an operation may run again when its COMMIT was sent and the
// connection was lost before the answer came back (its outcome is unknown).
enum class OnUnknownOutcome {
  kRetry,   // idempotent: running it twice leaves what running it once does
  kReport,  // not idempotent: the caller is told, and re-reads
};

class PgConnectionPool {
 public:
  // `url`: the libpq URI with the store's connection defaults added to
  // `shown_url` (the caller's, without its password), which messages show
  // instead; `hosts`: how messages name the database ("db1:5432,db2:5432").
  // Connections are opened on first use; `timeout` bounds each statement
  // (statement_timeout) and the wait for a free connection.
  PgConnectionPool(std::string url, std::string shown_url, std::string hosts, int size,
                   absl::Duration timeout);
  ~PgConnectionPool();
  PgConnectionPool(const PgConnectionPool&) = delete;
  PgConnectionPool& operator=(const PgConnectionPool&) = delete;

  // Runs `body` in a transaction on a pooled connection and commits it.  A
  // body that fails rolls back and its status is returned.  When the
  // connection is lost before COMMIT was sent, nothing was committed and the
  // whole transaction runs once more on a fresh connection (so `body` must
  // assign, not append, its outputs); when it is lost during COMMIT, the
  // transaction runs again only with kRetry.  Errors: kUnavailable ("the key
  // store (PostgreSQL HOSTS) is unreachable: …") when the database cannot be
  // reached; the body's errors.
  absl::Status InTransaction(absl::string_view what, OnUnknownOutcome on_unknown,
                             absl::FunctionRef<absl::Status(appdb::Database&)> body);
  // Runs `body` outside a transaction: one statement that only reads, or
  // one that cannot run in a transaction (VACUUM).  Runs once more on a
  // fresh connection when the connection was lost.
  absl::Status Run(absl::FunctionRef<absl::Status(appdb::Database&)> body);

  const std::string& hosts() const { return hosts_; }
  // `cause` (a lost or refused connection) as the store reports it.
  absl::Status Unreachable(const absl::Status& cause) const;
  // `message` (from appdb) with the URL as the caller wrote it.
  std::string Shown(absl::string_view message) const;
  absl::Status WithShownUrl(absl::Status s) const;

 private:
  struct Checkout {
    std::unique_ptr<appdb::PostgresDatabase> db;
    uint64_t generation = 0;
  };
  absl::StatusOr<Checkout> Acquire();
  // Gives the connection back; a broken one is closed, and so is every idle
  // one opened before it broke (a restarted or failed-over server broke
  // them all).
  void Release(Checkout checkout, bool broken);
  absl::StatusOr<std::unique_ptr<appdb::PostgresDatabase>> Connect() const;

  const std::string url_;
  const std::string redacted_url_;  // url_ as appdb's messages show it
  const std::string shown_url_;
  const std::string hosts_;
  const int size_;
  const absl::Duration timeout_;
  std::mutex mu_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<appdb::PostgresDatabase>> idle_;  // GUARDED_BY(mu_)
  int open_ = 0;             // idle and checked out; GUARDED_BY(mu_)
  uint64_t generation_ = 0;  // bumped when connections broke; GUARDED_BY(mu_)
};

// A statement's rows, or its error.
absl::StatusOr<std::vector<appdb::ResultRow>> Query(appdb::Database& db, absl::string_view sql,
                                                    const SqlParams& params = {});
// A statement without rows; returns the number of rows it changed.
absl::StatusOr<uint64_t> Execute(appdb::Database& db, absl::string_view sql,
                                 const SqlParams& params = {});

}  // namespace keyward::keystore

#endif  // KEYWARD_KEYSTORE_POSTGRES_CONNECTION_POOL_H_
