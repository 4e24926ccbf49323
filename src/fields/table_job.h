// Table jobs over the encrypted fields of one table, for data that exists
// before (or outlives) the application's own writes:
//
//   encrypt: plaintext values of the schema's encrypted columns become
//            field values (`keyward fields encrypt-table`);
//   decrypt: the reverse (`keyward fields decrypt-table`);
//   rotate:  after the Keyward key is rotated, each (class, tenant) gets a
//            new data key under the primary version, values under older
//            data keys are encrypted again, and the older keys are rewrapped
//            to the primary version (`keyward reencrypt --schema`).
//
// Each batch is read, transformed and verified (every new value is
// decrypted and compared with the original) outside any transaction; then
// its updates and the job's checkpoint commit in one transaction, each row
// only if it still holds what the job read.  So kill -9 at any moment
// leaves every row holding either its old value or a verified new one, and
// a rerun continues after the last committed batch.  Values already in the
// target state (encrypted and authentic, or plaintext) are left alone, so a
// rerun without a checkpoint is harmless too.
#ifndef KEYWARD_FIELDS_TABLE_JOB_H_
#define KEYWARD_FIELDS_TABLE_JOB_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "appdb/database.h"
#include "keyward/admin_client.h"
#include "keyward/field_encryptor.h"

namespace keyward::fields {

enum class TableJobKind { kEncrypt, kDecrypt, kRotate };
absl::string_view TableJobKindName(TableJobKind kind);

struct TableJobOptions {
  TableJobKind kind = TableJobKind::kEncrypt;
  size_t batch = 500;  // rows per transaction, 1..10000
  double rate = 0;     // rows per second at most; 0: unlimited
  bool dry_run = false;
  struct Progress {
    uint64_t done = 0, total = 0, changed = 0;
    double rows_per_s = 0;
  };
  std::function<void(const Progress&)> progress;  // after every batch
  // Rotate only: reports the key table's keys per KEK version to keywardd
  // (the retirement gate's evidence).  May be null.
  AdminClient* admin = nullptr;
};

struct TableJobReport {
  std::string table;
  bool resumed = false;
  uint64_t rows = 0;       // rows in the table at the start
  uint64_t scanned = 0;    // rows this run looked at
  uint64_t changed = 0;    // rows rewritten (dry run: would be)
  uint64_t values_changed = 0;
  uint64_t already = 0;    // values already in the target state
  uint64_t nulls = 0;      // NULL values (left NULL)
  uint64_t failed = 0;     // values that could not be transformed (row left as it was)
  uint64_t conflicts = 0;  // rows changed by someone else meanwhile (left to them)
  std::string first_failure;
  uint64_t new_keys = 0;      // rotate: data key generations made
  uint64_t rewrapped_keys = 0;  // rotate: older keys rewrapped to the primary
  double seconds = 0;
};

// Runs (or resumes) the job on `table` of `db` (the same database the
// encryptor's key table lives in).  Errors: the database's, keywardd's for
// the job as a whole (kUnavailable...), kFailedPrecondition for a column
// whose SQL type cannot hold the target values (a PostgreSQL integer column
// cannot hold ciphertext).  Per-value problems are counted in the report.
absl::StatusOr<TableJobReport> RunTableJob(FieldEncryptor& encryptor, appdb::Database& db,
                                           const std::string& table,
                                           const TableJobOptions& options);

}  // namespace keyward::fields

#endif  // KEYWARD_FIELDS_TABLE_JOB_H_
