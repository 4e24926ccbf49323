// MessageTable over a SQLite database file (`--db sqlite:PATH`).  The job's
// checkpoints live in the same database, in keyward_reencrypt_checkpoints,
// so they commit with the rows they describe.
#ifndef KEYWARD_REENCRYPT_SQLITE_TABLE_H_
#define KEYWARD_REENCRYPT_SQLITE_TABLE_H_

#include <memory>
#include <string>

#include "reencrypt/table.h"

struct sqlite3;

namespace keyward::reencrypt {

class SqliteTable final : public MessageTable {
 public:
  // Opens an existing database.  `table`, `column` and `id_column` must be
  // plain SQL identifiers ([A-Za-z_][A-Za-z0-9_]*).  Errors: kNotFound (no
  // such file, table or column), kInvalidArgument (identifiers).
  static absl::StatusOr<std::unique_ptr<SqliteTable>> Open(const std::string& path,
                                                           const std::string& table,
                                                           const std::string& column,
                                                           const std::string& id_column);
  ~SqliteTable() override;

  std::string DataSetName() const override;
  absl::StatusOr<uint64_t> CountRows() override;
  absl::StatusOr<std::vector<Row>> ReadBatch(const std::optional<RowId>& after,
                                             size_t limit) override;
  absl::StatusOr<uint64_t> CommitBatch(const std::vector<Update>& updates,
                                       const std::string& job,
                                       const Checkpoint& checkpoint) override;
  absl::StatusOr<std::optional<Checkpoint>> LoadCheckpoint(const std::string& job) override;
  absl::Status ClearCheckpoint(const std::string& job) override;
  absl::StatusOr<std::optional<uint64_t>> ExternalChanges() override;

 private:
  SqliteTable() = default;
  sqlite3* db_ = nullptr;
  std::string path_, table_, column_, id_column_;
};

// "sqlite:PATH" → PATH.  Errors: kInvalidArgument naming the supported forms.
absl::StatusOr<std::string> SqlitePathFromUrl(const std::string& url);

}  // namespace keyward::reencrypt

#endif  // KEYWARD_REENCRYPT_SQLITE_TABLE_H_
