// MessageTable over the application's database (appdb::Database): SQLite
// (`--db sqlite:PATH`) or PostgreSQL (`--db postgresql://…`).  The job's
// checkpoints live in the same database, in keyward_reencrypt_checkpoints,
// so they commit with the rows they describe.
#ifndef KEYWARD_REENCRYPT_DATABASE_TABLE_H_
#define KEYWARD_REENCRYPT_DATABASE_TABLE_H_

#include <memory>
#include <string>

#include "appdb/database.h"
#include "reencrypt/table.h"

namespace keyward::reencrypt {

class DatabaseTable final : public MessageTable {
 public:
  // Opens `url` (appdb::Database::Open; a SQLite file must exist).
  // `table`, `column` and `id_column` must be plain SQL identifiers
  // ([A-Za-z_][A-Za-z0-9_]*), quoted as written (PostgreSQL: as the table
  // was created, lower case unless it was quoted).  Errors: kNotFound (no
  // such file, table or column), kInvalidArgument (identifiers, a URL of
  // neither kind), kUnavailable (the server cannot be reached).
  static absl::StatusOr<std::unique_ptr<DatabaseTable>> Open(const std::string& url,
                                                             const std::string& table,
                                                             const std::string& column,
                                                             const std::string& id_column);

  std::string DataSetName() const override;
  absl::StatusOr<uint64_t> CountRows() override;
  absl::StatusOr<std::vector<Row>> ReadBatch(const std::optional<RowId>& after,
                                             size_t limit) override;
  absl::StatusOr<uint64_t> CommitBatch(const std::vector<Update>& updates,
                                       const std::string& job,
                                       const Checkpoint& checkpoint) override;
  absl::StatusOr<std::optional<Checkpoint>> LoadCheckpoint(const std::string& job) override;
  absl::Status ClearCheckpoint(const std::string& job) override;
  // SQLite: its data_version.  PostgreSQL cannot tell (nullopt): the job
  // scans the table again for its report.
  absl::StatusOr<std::optional<uint64_t>> ExternalChanges() override;

 private:
  DatabaseTable() = default;
  std::unique_ptr<appdb::Database> db_;
  std::string name_;  // "sqlite:/abs/path#table.column" or the redacted URL's
  std::string table_, column_, id_column_;  // quoted
};

}  // namespace keyward::reencrypt

#endif  // KEYWARD_REENCRYPT_DATABASE_TABLE_H_
