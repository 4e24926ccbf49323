// The versions of each blind index, kept in the application's database
// beside its key table: `keyward_field_indexes`.  A version is one index
// column with its spec (columns, transforms, bits) and the data keys its
// MAC key came from.  States:
//
//   building  being filled by `keyward index rebuild`: writers fill it for
//             new rows, queries search it and the active version together
//   active    complete: searched and written
//   retired   replaced by a newer version: neither searched nor written;
//             `keyward index retire` drops its column
//
// A version's spec is stored with it, so writers and readers compute the
// values the column was built with even while the schema file is being
// changed.  Thread-safety: functions take the connection to use; callers
// serialize their use of it.
#ifndef KEYWARD_FIELDS_INDEX_CATALOG_H_
#define KEYWARD_FIELDS_INDEX_CATALOG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "appdb/database.h"
#include "keyward/field_schema.h"

namespace keyward::fields {

inline constexpr char kIndexTable[] = "keyward_field_indexes";

// How long a writer may keep using the index versions it read: the
// encryptor reloads them at least this often, and the rebuild job waits
// this long after starting a version before its final pass.
inline constexpr int kIndexRefreshSeconds = 2;

enum class IndexState { kBuilding, kActive, kRetired };
absl::string_view IndexStateName(IndexState state);

struct IndexVersion {
  std::string index;   // the schema's index name
  int64_t version = 1;
  std::string column;  // index (version 1) or index_vN
  std::vector<std::string> columns;
  std::vector<IndexTransform> transforms;
  int bits = 0;
  std::map<std::string, uint32_t> key_refs;  // class -> field key ref
  IndexState state = IndexState::kBuilding;
  // building: the id of the last row the job committed (NULL: none yet).
  appdb::Value checkpoint;
  int64_t rows_done = 0;
  std::string started_at, updated_at;

  bool live() const { return state != IndexState::kRetired; }
  // The spec part that must match for two versions to hold the same values.
  bool SameSpec(const BlindIndex& spec, int resolved_bits) const;
};

// The column name of `version` of `index`.
std::string IndexColumnName(absl::string_view index, int64_t version);

// Creates the table when missing.
absl::Status EnsureIndexTable(appdb::Database& db);
// Every version of the table's indexes, by index then version.
absl::StatusOr<std::vector<IndexVersion>> LoadIndexVersions(appdb::Database& db,
                                                           absl::string_view dataset,
                                                           absl::string_view table);
// Stores a new version (kAlreadyExists when that version number is taken).
absl::Status InsertIndexVersion(appdb::Database& db, absl::string_view dataset,
                                absl::string_view table, const IndexVersion& version);
absl::Status SaveIndexProgress(appdb::Database& db, absl::string_view dataset,
                               absl::string_view table, const IndexVersion& version);
// Moves a version from state `from` to `to`; false when it was not in
// `from` (another rebuild changed it meanwhile).
absl::StatusOr<bool> SetIndexStateFrom(appdb::Database& db, absl::string_view dataset,
                                       absl::string_view table, absl::string_view index,
                                       int64_t version, IndexState from, IndexState to);
// Retires every active version of `index` but `keep`.
absl::Status RetireOthers(appdb::Database& db, absl::string_view dataset, absl::string_view table,
                          absl::string_view index, int64_t keep);
// Checks versions read from the database against the schema, since anyone
// who can write the database can write them: each must name an index of
// the table, its own column (IndexColumnName), encrypted fields of the
// table, exactly the classes of those fields, and the declared bits when
// its spec is the schema's.  Errors: kDataLoss naming the row.
absl::Status ValidateIndexVersions(const FieldSchema& schema, const TableSchema& table,
                                   const std::vector<IndexVersion>& versions);
absl::Status DeleteIndexVersion(appdb::Database& db, absl::string_view dataset,
                                absl::string_view table, absl::string_view index,
                                int64_t version);

}  // namespace keyward::fields

#endif  // KEYWARD_FIELDS_INDEX_CATALOG_H_
