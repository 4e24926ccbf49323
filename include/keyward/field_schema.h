// A data-classification schema: which fields of which tables Keyward
// encrypts, under which key, and who may read them.  docs/fields.md is the
// guide; schema/fields.schema.json is the JSON Schema editors can use.
//
//   version: 1
//   dataset: customers            # names the data set in keys and contexts
//   key: customers                # the Keyward key that protects it
//   tenant_column: tenant_id      # optional: one data key per tenant
//   classes:
//     pii: { encrypt: required, readers: ["spiffe://keyward.dev/app"] }
//     internal: { encrypt: optional }
//   tables:
//     customers:
//       id_column: id
//       fields:
//         email: { class: pii, treatment: randomized }
//         notes: { class: internal, treatment: plaintext }
//
// Columns a table does not list are not touched.  Treatments: plaintext,
// randomized (AES-256-GCM, docs/decisions/0022), deterministic (reserved for
// searchable fields; refused by this version).
//
// Thread-safety: a FieldSchema is immutable; share it freely.
#ifndef KEYWARD_FIELD_SCHEMA_H_
#define KEYWARD_FIELD_SCHEMA_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace keyward {

enum class EncryptRule { kRequired, kOptional, kNever };
enum class Treatment { kPlaintext, kRandomized, kDeterministic };

absl::string_view EncryptRuleName(EncryptRule rule);
absl::string_view TreatmentName(Treatment treatment);

struct FieldClass {
  std::string name;
  EncryptRule encrypt = EncryptRule::kRequired;
  // Principals (globs, as in docs/policy.md) that may read fields of this
  // class.  keywardd enforces it through its policy: `keyward schema
  // policy` prints the rules.
  std::vector<std::string> readers;
};

struct FieldRule {
  std::string column;
  std::string class_name;
  Treatment treatment = Treatment::kRandomized;
  bool encrypted() const { return treatment != Treatment::kPlaintext; }
};

struct TableSchema {
  std::string name;
  std::string id_column;
  std::map<std::string, FieldRule> fields;  // by column
  // The encrypted fields, by column.
  std::vector<const FieldRule*> EncryptedFields() const;
};

// One problem found in a schema file, with the line (1-based; 0 when the
// problem is with the file as a whole).
struct SchemaProblem {
  int line = 0;
  std::string message;
};

class FieldSchema {
 public:
  // Parses and checks a schema.  Errors: kInvalidArgument listing every
  // problem as "SOURCE:LINE: message", one per line.
  static absl::StatusOr<std::shared_ptr<const FieldSchema>> Parse(
      absl::string_view yaml, const std::string& source = "<schema>");
  // Reads `path` and parses it.  Errors: as Parse; kNotFound when the file
  // cannot be read.
  static absl::StatusOr<std::shared_ptr<const FieldSchema>> Load(const std::string& path);
  // Every problem in `yaml` (empty when the schema is valid).
  static std::vector<SchemaProblem> Check(absl::string_view yaml);

  const std::string& dataset() const { return dataset_; }
  const std::string& key() const { return key_; }
  const std::string& tenant_column() const { return tenant_column_; }  // "" for none
  const std::map<std::string, FieldClass>& classes() const { return classes_; }
  const std::map<std::string, TableSchema>& tables() const { return tables_; }
  // kNotFound naming the tables the schema has.
  absl::StatusOr<const TableSchema*> Table(absl::string_view name) const;

  // Access policy rules (YAML, docs/policy.md) that give each class's
  // readers the data key operations on this dataset's key for that class
  // only: the schema's access rules, enforced by keywardd.
  std::string PolicyRules() const;

 private:
  friend class SchemaParser;
  std::string dataset_, key_, tenant_column_;
  std::map<std::string, FieldClass> classes_;
  std::map<std::string, TableSchema> tables_;
};

}  // namespace keyward

#endif  // KEYWARD_FIELD_SCHEMA_H_
