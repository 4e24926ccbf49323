// Building and replacing blind indexes without downtime
// (`keyward index rebuild` / `keyward index retire`).
//
// Rebuild, per index of the table: when the live version already matches
// the schema's spec, the resolved bits and the current data keys, nothing
// happens.  Otherwise a new version is started (column `name` for version
// 1, `name_vN` after it, added with an SQL index on it) in state
// `building`: from then on writers (FieldEncryptor::EncryptRow) fill it for
// new rows and searches look in it and in the active version.  The job
// fills it in batches by id, each batch committed with its checkpoint in
// one transaction, each row only if its fields still hold what the job
// read; kill -9 at any moment and a rerun resumes after the last committed
// batch.  A new version is scanned only once every writer has seen it
// (kIndexRefreshSeconds); after the scan the job waits as long again, fills
// the rows left NULL meanwhile, and in one transaction makes the new
// version active and the old one retired.  Rows that fail (keywardd
// unreachable, access denied) keep the version building, searched beside
// the old one, until a rerun fills them; rows of erased tenants are
// skipped.  A version that is already current still gets the final pass.
// A rotated data key (`keyward reencrypt --schema`) is a new spec: rerun
// rebuild after it.
//
// Retire drops the columns (and SQL indexes) of retired versions: the
// explicit last step, once nothing reads them.
#ifndef KEYWARD_FIELDS_INDEX_JOB_H_
#define KEYWARD_FIELDS_INDEX_JOB_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "appdb/database.h"
#include "keyward/field_encryptor.h"

namespace keyward::fields {

struct IndexJobOptions {
  std::vector<std::string> indexes;  // empty: every index of the table
  // The bits of each index (auto already resolved by the planner); every
  // index the job touches must be here.
  std::map<std::string, int> bits;
  size_t batch = 500;  // rows per transaction, 1..10000
  double rate = 0;     // rows per second at most; 0: unlimited
  struct Progress {
    std::string index;
    uint64_t done = 0, total = 0;
    double rows_per_s = 0;
  };
  std::function<void(const Progress&)> progress;  // after every batch
};

struct IndexJobReport {
  struct Index {
    std::string name;
    int64_t version = 0;
    std::string column;
    // "up to date", "built", "resumed", "restarted", or "incomplete" (rows
    // failed: the version stays building, searched beside the old one, and
    // the next run fills what is missing)
    std::string action;
    uint64_t rows = 0;       // rows in the table at the start
    uint64_t updated = 0;    // rows given a value
    uint64_t nulls = 0;      // rows with a NULL field (index value NULL)
    uint64_t failed = 0;     // rows whose fields could not be decrypted (left NULL)
    uint64_t erased = 0;     // rows of erased tenants (nothing to index)
    uint64_t conflicts = 0;  // rows changed meanwhile (their writer filled them)
    uint64_t caught_up = 0;  // rows filled by the final pass
    uint64_t conflicts_left = 0;  // changed meanwhile in the last final pass
    std::string first_failure;
    std::string retired_column;  // the column the new version replaces ("" for none)
    double seconds = 0;
  };
  std::vector<Index> indexes;
};

// Errors: kNotFound for an unknown table or index; kInvalidArgument for a
// missing bits entry or a bad batch; the database's and keywardd's.
absl::StatusOr<IndexJobReport> RebuildIndexes(FieldEncryptor& encryptor, appdb::Database& db,
                                              const std::string& table,
                                              const IndexJobOptions& options);

struct RetireReport {
  std::vector<std::string> dropped;  // columns
};
// Drops every retired version's column of the table (of `indexes` only
// when given).
absl::StatusOr<RetireReport> RetireIndexes(FieldEncryptor& encryptor, appdb::Database& db,
                                           const std::string& table,
                                           const std::vector<std::string>& indexes);

// Sets every blind index column of `tenant`'s rows to NULL, in every table
// of the schema (tenant erasure: the index values would otherwise let a
// reader of the class test guesses against the erased rows).  Returns the
// rows changed.
absl::StatusOr<uint64_t> ClearTenantIndexValues(appdb::Database& db, const FieldSchema& schema,
                                                const std::string& tenant);

}  // namespace keyward::fields

#endif  // KEYWARD_FIELDS_INDEX_JOB_H_
