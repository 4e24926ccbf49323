// The searchable side of a FieldEncryptor: the blind index versions of
// each table (reloaded from keyward_field_indexes at least every
// kIndexRefreshSeconds / 2), index values for rows being written, and the
// terms and checks of equality searches.
//
// Thread-safe.
#ifndef KEYWARD_FIELDS_SEARCHABLE_H_
#define KEYWARD_FIELDS_SEARCHABLE_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "appdb/database.h"
#include "fields/derived_keys.h"
#include "fields/field_keys.h"
#include "fields/index_catalog.h"
#include "keyward/field_encryptor.h"

namespace keyward::fields {

// A value's field type and payload bytes (integers and reals as 8
// big-endian bytes in `number`), as the field value format encrypts them.
struct EncodedValue {
  format::FieldType type = format::FieldType::kText;
  absl::string_view payload;
  char number[8];
};
void EncodeValue(const FieldValue& value, EncodedValue* out);  // value not NULL
// The inverse; wipes what is left of `payload`.
FieldValue DecodeValue(format::FieldType type, std::string&& payload);

class Searchable {
 public:
  using Versions = std::vector<IndexVersion>;

  Searchable(std::shared_ptr<const FieldSchema> schema, FieldKeys& keys, DerivedKeys& derived,
             std::unique_ptr<appdb::Database> catalog, FieldEncryptor::Encoding encoding)
      : schema_(std::move(schema)),
        keys_(keys),
        derived_(derived),
        catalog_(std::move(catalog)),
        encoding_(encoding) {}

  // The table's index versions (every state), at most a refresh old.
  absl::StatusOr<std::shared_ptr<const Versions>> VersionsOf(const std::string& table);
  // Forgets the cached versions (the rebuild job, after changing them).
  void Reload();

  // The value of `version` for the plaintext `values` (one per column of
  // the version, in order): nullopt when one of them is NULL.
  absl::StatusOr<std::optional<int64_t>> IndexValue(const std::string& table,
                                                    const IndexVersion& version,
                                                    const std::vector<const FieldValue*>& values);

  // Adds the live index columns' values to a plaintext row.
  absl::Status AddIndexValues(const TableSchema& table, FieldRow& row);

  absl::StatusOr<FieldEncryptor::Search> Prepare(absl::string_view table,
                                                 std::vector<FieldEncryptor::Condition> conditions,
                                                 absl::string_view tenant);
  // The table columns a condition named `name` reads (the index's column
  // for an index name).
  std::vector<std::string> ColumnsOf(const TableSchema& table, const std::string& name) const;
  // Whether a decrypted row meets every condition of `search`.  Errors: a
  // condition's column that failed to decrypt (its error, from `failed`).
  absl::StatusOr<bool> Matches(const FieldEncryptor::Search& search, const FieldRow& row,
                               const std::map<std::string, absl::Status>& failed);

  // The same checks with the conditions planned and their canonical values
  // computed once, for the many candidates of one search (fields::Finder).
  // Errors are reported by Matches, where and when the one-shot Matches
  // reports them.  Holds plaintext-derived values: wiped when destroyed.
  class Matcher {
   public:
    Matcher(Searchable& searchable, const FieldEncryptor::Search& search);
    ~Matcher();
    Matcher(const Matcher&) = delete;
    Matcher& operator=(const Matcher&) = delete;
    absl::StatusOr<bool> Matches(const FieldRow& row,
                                 const std::map<std::string, absl::Status>& failed) const;

   private:
    struct Check {
      std::string column;
      // One per transform chain: the chain and the condition value's
      // canonical text under it.
      std::vector<std::pair<const std::vector<IndexTransform>*,
                            absl::StatusOr<std::optional<std::string>>>>
          wants;
    };
    const FieldEncryptor::Search& search_;
    const std::string* tenant_column_ = nullptr;  // null: no tenant check
    absl::Status table_status_;
    std::vector<absl::StatusOr<Check>> checks_;  // one per condition, in order
  };

 private:
  // The deterministic ciphertexts of `value` in `column` under every
  // generation of its data key.
  absl::StatusOr<std::vector<FieldValue>> DeterministicCandidates(const TableSchema& table,
                                                                  const FieldRule& rule,
                                                                  const FieldValue& value,
                                                                  absl::string_view tenant);
  // Terms of `index` for `values` (by column): one alternative per live
  // version.  kFailedPrecondition when no version is live.
  absl::StatusOr<std::vector<FieldEncryptor::SearchColumn>> IndexTerm(
      const TableSchema& table, const BlindIndex& index,
      const std::map<std::string, const FieldValue*>& values);

  std::shared_ptr<const FieldSchema> schema_;
  FieldKeys& keys_;
  DerivedKeys& derived_;
  absl::Mutex mu_;
  std::unique_ptr<appdb::Database> catalog_ ABSL_GUARDED_BY(mu_);
  struct Loaded {
    absl::Time at;
    std::shared_ptr<const Versions> versions;
  };
  std::map<std::string, Loaded> loaded_ ABSL_GUARDED_BY(mu_);
  const FieldEncryptor::Encoding encoding_;
};

// Wipes the text and bytes of a row's values.
void WipeRow(FieldRow& row);

// The value's canonical text compared by searches (fields/index_value.h's
// IndexText, then `chain`); nullopt for NULL.
absl::StatusOr<std::optional<std::string>> Canonical(const FieldValue& value,
                                                     const std::vector<IndexTransform>& chain);

}  // namespace keyward::fields

#endif  // KEYWARD_FIELDS_SEARCHABLE_H_
