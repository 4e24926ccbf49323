// Where a re-encryption job reads and writes rows: a column of Keyward
// messages in some database table.  DatabaseTable (database_table.h) is the
// implementation, over SQLite or PostgreSQL.
//
// The contract that makes jobs crash-safe: CommitBatch writes a batch of new
// values and the job's checkpoint in one transaction, and replaces a row
// only if it still holds the value the job read (an application that
// changed the row meanwhile wins; the row is counted as a conflict).
#ifndef KEYWARD_REENCRYPT_TABLE_H_
#define KEYWARD_REENCRYPT_TABLE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace keyward::reencrypt {

// A row's id: the id column's value (integer or text).
using RowId = std::variant<int64_t, std::string>;
std::string RowIdString(const RowId& id);

struct Row {
  RowId id;
  std::string value;  // NULL values are not returned
};

struct Update {
  RowId id;
  std::string old_value;
  std::string new_value;
};

// Where a job stopped: the last id it committed, and its counters so far.
struct Checkpoint {
  std::optional<RowId> after;
  uint64_t rows_done = 0;     // rows read and decided
  uint64_t rows_changed = 0;  // rows rewritten
  absl::Time started;
};

class MessageTable {
 public:
  virtual ~MessageTable() = default;
  // A stable name for reports: "sqlite:/abs/path.db#table.column".
  virtual std::string DataSetName() const = 0;
  // Rows whose column is not NULL.
  virtual absl::StatusOr<uint64_t> CountRows() = 0;
  // Up to `limit` rows with id > `after` (all when nullopt), by id.
  virtual absl::StatusOr<std::vector<Row>> ReadBatch(const std::optional<RowId>& after,
                                                     size_t limit) = 0;
  // Applies `updates` (each only if the row still holds old_value) and
  // stores `checkpoint` for `job`, atomically; the stored rows_changed is
  // checkpoint.rows_changed plus the rows replaced here.  Returns the rows
  // replaced.
  virtual absl::StatusOr<uint64_t> CommitBatch(const std::vector<Update>& updates,
                                               const std::string& job,
                                               const Checkpoint& checkpoint) = 0;
  virtual absl::StatusOr<std::optional<Checkpoint>> LoadCheckpoint(const std::string& job) = 0;
  // A value that changes whenever another connection commits a change to
  // the database (this connection's own commits do not change it), or
  // nullopt when the store cannot tell.  A job whose value did not change
  // from start to end reports the versions it saw and wrote; otherwise it
  // scans the table again for the report.
  virtual absl::StatusOr<std::optional<uint64_t>> ExternalChanges() = 0;
  virtual absl::Status ClearCheckpoint(const std::string& job) = 0;
};

}  // namespace keyward::reencrypt

#endif  // KEYWARD_REENCRYPT_TABLE_H_
