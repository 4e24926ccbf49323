// The audit log in PostgreSQL: one log per keywardd replica, so that its
// records outlive the replica's machine (docs/decisions/0027-ha-audit-log.md).
//
// Each replica writes its own log, named by its log id (the replica's
// name), exactly as it would write a log directory: its own chain, Merkle
// tree and signed checkpoints.  The rows:
//
//   keyward_audit_logs(log_id PK, environment, created)   a log with records
//   keyward_audit_records(log_id, idx, line)                PK (log_id, idx)
//   keyward_audit_checkpoints(log_id, n, tree_size, line)   PK (log_id, n)
//   keyward_audit_keys(log_id, fingerprint, pem)            PK (log_id,
//   fingerprint)
//
// created when absent.  A log is listed in keyward_audit_logs by the same
// transaction as its first records, so a listed log without records was
// cut back.  A batch of records is one transaction, durable when COMMIT
// returns (replicated too when the server runs synchronous replication:
// that is the server's setting).  A connection lost during COMMIT leaves
// the outcome unknown: before writing again the storage reads how many
// records the log holds and either takes the batch as landed or writes it
// again, so an index is never written twice nor skipped.
//
// One writer per log: Open takes a session-level advisory lock on the log
// id, and takes it again after every reconnection before writing; while
// another session holds it, appends fail (and AuditLog fails closed).
#ifndef KEYWARD_AUDIT_POSTGRES_STORAGE_H_
#define KEYWARD_AUDIT_POSTGRES_STORAGE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "audit/log_storage.h"

namespace keyward::appdb {
class Database;
}

namespace keyward::audit {

struct PostgresAuditOptions {
  // libpq URL; may list several hosts with target_session_attrs=read-write
  // (postgresql://u@pg1,pg2,pg3/keyward?target_session_attrs=read-write) so
  // that a reconnection finds the current primary.
  std::string url;
  // This replica's log: its name, 1-128 characters of [A-Za-z0-9._:@-].
  std::string log_id;
  // Recorded in keyward_audit_logs for people (the checkpoints carry it too).
  std::string environment;
};

// Connects, creates the tables when absent, and takes the log's advisory
// lock; the returned storage goes in AuditLogOptions::storage (its `dir`
// empty), and AuditLog::Open loads the log from it.  Errors:
// kInvalidArgument for a malformed log id; kFailedPrecondition when another
// session holds the log (another keywardd with the same replica name);
// kUnavailable when the server cannot be reached; kPermissionDenied when
// the role may not create or write the tables.
absl::StatusOr<std::shared_ptr<LogStorage>> OpenPostgresAuditStorage(
    const PostgresAuditOptions& options);

// One log as stored, for `keyward audit verify --db`.
struct StoredAuditLog {
  std::string log_id;
  bool listed = false;               // in keyward_audit_logs
  std::vector<std::string> records;  // by idx
  std::vector<std::string> checkpoints;
  std::vector<std::string> keys_pem;  // published signing keys
};

// Reads the audit logs in a database (any session; no lock taken).
class PostgresAuditReader {
 public:
  // Errors: as appdb::Database::Open; kNotFound when the database holds no
  // audit tables.
  static absl::StatusOr<std::unique_ptr<PostgresAuditReader>> Open(
      const std::string& url);
  ~PostgresAuditReader();
  // Every log id that is listed or has rows, sorted.
  absl::StatusOr<std::vector<std::string>> LogIds();
  // Everything stored for `log_id` (empty, not listed, when there is none).
  absl::StatusOr<StoredAuditLog> Load(const std::string& log_id);
  // The URL without its password, for messages.
  std::string RedactedUrl() const;

 private:
  explicit PostgresAuditReader(std::unique_ptr<appdb::Database> db);
  std::unique_ptr<appdb::Database> db_;
};

}  // namespace keyward::audit

#endif  // KEYWARD_AUDIT_POSTGRES_STORAGE_H_
