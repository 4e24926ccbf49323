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
//         email:
//           class: pii
//           treatment: randomized
//           indexes:                  # blind indexes (searchable fields)
//             - { name: email_idx, transform: [trim, lowercase], bits: auto }
//         ssn: { class: pii, treatment: deterministic }
//         notes: { class: internal, treatment: plaintext }
//         country: { class: internal, treatment: plaintext, cardinality: 200 }
//       indexes:                      # compound blind indexes
//         - { name: name_year, fields: [last_name, birth_year], bits: 12 }
//
// Columns a table does not list are not touched.  Treatments: plaintext,
// randomized (AES-256-GCM, docs/decisions/0022), deterministic (AES-256-SIV:
// equal values give equal ciphertexts, for equality lookups and joins).  A
// blind index is a keyed MAC of a transformed value, truncated to a few
// bits and kept in its own column; `keyward index plan` checks that its
// bits leave every index value matching several rows.
//
// Thread-safety: a FieldSchema is immutable; share it freely.
#ifndef KEYWARD_FIELD_SCHEMA_H_
#define KEYWARD_FIELD_SCHEMA_H_

#include <cstdint>
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
  // Expected number of distinct values (`cardinality:`), 0 when unknown.
  // The planner and `schema check` use it to spot low-cardinality fields.
  uint64_t cardinality = 0;
  int line = 0;  // in the schema file
  bool encrypted() const { return treatment != Treatment::kPlaintext; }
};

// One step of a blind index's transform chain, applied to the value's text
// in order (docs/fields.md, "Blind indexes").
struct IndexTransform {
  enum class Kind {
    kLowercase,  // Unicode simple lowercase, code point by code point
    kTrim,       // strips leading and trailing white space
    kDigits,     // keeps only the ASCII digits 0-9
    kLast,       // the last n code points
    kFirst,      // the first n code points
    kNfkc,       // Unicode normalization form KC
  };
  Kind kind = Kind::kLowercase;
  int n = 0;  // kLast and kFirst only, 1..1024
  bool operator==(const IndexTransform&) const = default;
};
// "lowercase", "trim", "digits", "last:4", "first:2", "normalize:NFKC".
std::string IndexTransformName(const IndexTransform& transform);
// The reverse; false for anything else (including last:0 and last:1025).
bool ParseIndexTransform(absl::string_view name, IndexTransform* out);

// Widest blind index the schema accepts; index values are stored as
// non-negative integers below 2^bits.
inline constexpr int kMaxIndexBits = 32;

// Fields with at most this many distinct values (booleans, enums,
// countries) leak how often each value occurs under deterministic
// encryption or an index wide enough to tell the values apart: `schema
// check` warns, and `keyward index plan` keeps auto indexes narrower.
inline constexpr uint64_t kLowCardinality = 1000;

// A blind index: declared under a field (one column) or under the table's
// `indexes` (compound: several columns, their transformed values MACed
// together).  Its values live in an integer column named `name` (version
// 1) or `name_vN` (version N, written beside the old one by `keyward index
// rebuild`).
struct BlindIndex {
  std::string name;
  std::vector<std::string> columns;  // in MAC order
  std::vector<IndexTransform> transforms;  // applied to each column's value
  int bits = 0;  // 1..kMaxIndexBits; 0 = auto (`keyward index plan` chooses)
  int line = 0;  // in the schema file
  bool compound() const { return columns.size() > 1; }
};

struct TableSchema {
  std::string name;
  std::string id_column;
  std::map<std::string, FieldRule> fields;  // by column
  // Every blind index of the table, single-column and compound, in schema
  // order.  Names are unique within the table and distinct from its columns.
  std::vector<BlindIndex> indexes;
  // The encrypted fields, by column.
  std::vector<const FieldRule*> EncryptedFields() const;
  // The index named `name`, or nullptr.
  const BlindIndex* Index(absl::string_view name) const;
  // The indexes whose columns include `column`.
  std::vector<const BlindIndex*> IndexesOf(absl::string_view column) const;
};

// One problem found in a schema file, with the line (1-based; 0 when the
// problem is with the file as a whole).  A warning does not make the
// schema invalid (`keyward schema check` prints it and exits 0).
struct SchemaProblem {
  int line = 0;
  std::string message;
  bool warning = false;
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
  // Every problem and warning in `yaml` (no errors when the schema is valid).
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
