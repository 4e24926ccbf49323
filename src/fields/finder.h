// Equality searches run on the application's database: the SQL that
// FieldEncryptor::PrepareSearch describes, with each value in the form its
// column holds, and every candidate confirmed (decrypted, false positives
// dropped).  For the CLI (`keyward fields find`), the tests and the
// benchmarks; applications with their own SQL driver use PrepareSearch
// and ConfirmMatch directly.
//
// Thread-safety: one Finder per thread (it uses the connection).
#ifndef KEYWARD_FIELDS_FINDER_H_
#define KEYWARD_FIELDS_FINDER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "appdb/database.h"
#include "keyward/field_encryptor.h"

namespace keyward::fields {

class Finder {
 public:
  // Reads the table's columns once.  Errors: kNotFound for a table the
  // schema or the database lacks.
  static absl::StatusOr<std::unique_ptr<Finder>> New(FieldEncryptor& encryptor,
                                                     appdb::Database& db,
                                                     const std::string& table);

  struct Result {
    std::vector<std::string> columns;  // the table's, in order
    std::vector<DecryptedRow> rows;    // the true matches, by id
    uint64_t candidates = 0;           // rows the database returned
    uint64_t false_positives = 0;      // candidates dropped after decryption
    // Candidates whose condition fields could not be decrypted (an erased
    // tenant's rows, a class this caller may not read): skipped, as they
    // cannot be told to match.
    uint64_t unreadable = 0;
    absl::Status first_unreadable;
  };
  // `limit`: at most this many candidates are read (0: no limit).
  absl::StatusOr<Result> Find(std::vector<FieldEncryptor::Condition> conditions,
                              absl::string_view tenant = "", size_t limit = 0);

 private:
  Finder(FieldEncryptor& encryptor, appdb::Database& db, std::string table)
      : enc_(encryptor), db_(db), table_(std::move(table)) {}
  // `value` in the form `column` holds (bytes for BLOB/BYTEA, integers for
  // integer columns, text for text columns).
  appdb::Value ForColumn(const std::string& column, const FieldValue& value) const;

  FieldEncryptor& enc_;
  appdb::Database& db_;
  const std::string table_;
  std::vector<std::string> columns_;
  std::map<std::string, std::string> types_;  // column -> declared type
  std::string select_;
};

}  // namespace keyward::fields

#endif  // KEYWARD_FIELDS_FINDER_H_
