// The cleartext scanner behind `keyward classify scan`: samples the columns
// of an application database and counts the values each detector
// (classify/detectors.h) accepts, and those Keyward already encrypted.
#ifndef KEYWARD_CLASSIFY_SCAN_H_
#define KEYWARD_CLASSIFY_SCAN_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "appdb/database.h"
#include "classify/detectors.h"

namespace keyward::classify {

struct ScanOptions {
  // One table, or every user table when empty.
  std::string table;
  // At most this many rows per table (1 to 1,000,000).
  int64_t sample = 1000;
};

struct ColumnReport {
  std::string table;
  std::string column;
  // Non-NULL values in the sample.
  int64_t sampled = 0;
  // Of those, values Keyward already encrypted (IsKeywardCiphertext).
  int64_t encrypted = 0;
  // The detector that matched most values, and how many it matched; unset
  // when none matched.
  std::optional<Kind> kind;
  int64_t matches = 0;
  // A value of `kind`, masked (Mask()); never a value in full.
  std::string example;

  // Reported: `kind` matched at least max(1, 5% of `sampled`) values.
  bool sensitive() const;
};

struct TableReport {
  std::string name;
  // The first primary key column, empty when there is none.
  std::string id_column;
  // Every primary key column (more than one for a composite key).
  std::vector<std::string> primary_key;
  int64_t rows_sampled = 0;
  // Random rows (small tables) or the first rows in storage order.
  bool random_sample = false;
};

struct ScanResult {
  std::string database;  // Database::RedactedUrl()
  // The data set name for the draft schema: the SQLite file's stem or the
  // PostgreSQL database's name.
  std::string dataset;
  int64_t sample = 0;
  std::vector<TableReport> tables;
  // Every sampled column, in table then declaration order.
  std::vector<ColumnReport> columns;
};

// Tables of at most this many rows are sampled at random (ORDER BY
// random()); bigger ones by their first `sample` rows, which avoids sorting
// the whole table.
inline constexpr int64_t kRandomSampleMaxRows = 100000;

// Scans `db`.  Errors: kInvalidArgument for a sample out of range,
// kNotFound for a table that does not exist, and the database's errors.
// Reads only; never writes.
[[nodiscard]] absl::StatusOr<ScanResult> Scan(appdb::Database& db,
                                              const ScanOptions& options);

}  // namespace keyward::classify

#endif  // KEYWARD_CLASSIFY_SCAN_H_
