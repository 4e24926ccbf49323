// The blind index planner: chooses and checks the bits of a table's blind
// indexes for an expected row count, so that every index value, and every
// combination of index values a row carries, is expected to match several
// rows (docs/decisions/0025-blind-index-planning.md; `keyward index plan`).
//
// For a group of fields linked by their indexes (a field alone, or fields
// joined by compound indexes), with R rows, index bits L_i and input
// domains D_i (distinct values the index can see):
//
//   effective bits  E_i = min(L_i, log2 D_i)
//   combined bits   E   = min(sum E_i, log2 D_group)
//   coincidences    C   = max(1, R / 2^E)      must be >= min_matches (2)
//
// the coincidence count of CipherSweet's blind index planner (Paragon
// Initiative Enterprises).  An index whose false positives per lookup
// exceed sqrt(R) is accepted with a warning that it is not worth much.
//
// Thread-safety: pure functions over immutable inputs.
#ifndef KEYWARD_FIELDS_INDEX_PLANNER_H_
#define KEYWARD_FIELDS_INDEX_PLANNER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "keyward/field_schema.h"

namespace keyward::fields {

struct PlanOptions {
  // Rows each index value (and each combined fingerprint) must be
  // expected to match; at least 2.
  uint64_t min_matches = 2;
};

// Where an index's input-domain estimate comes from.
enum class DomainSource {
  kCardinality,  // the fields' declared `cardinality:`
  kTransforms,   // the transform chain (digits + first:N/last:N: 10^N)
  kUnknown,      // nothing known: every row distinct, the worst case
};
absl::string_view DomainSourceName(DomainSource source);

struct IndexPlan {
  std::string name;
  std::vector<std::string> columns;
  int declared_bits = 0;  // 0 = auto
  int bits = 0;           // chosen: the declared bits, or the auto choice
  // Distinct inputs the index can see, at most the row count.
  double domain = 0;
  DomainSource domain_source = DomainSource::kUnknown;
  std::string domain_reason;  // e.g. "digits, last:4: 10^4"
  double effective_bits = 0;  // min(bits, log2 domain)
  double rows_per_value = 0;  // max(1, rows / 2^effective_bits)
  // Rows with another value that share the looked-up value's index value.
  double false_positives = 0;
  // Fewest bits that keep false positives per lookup within sqrt(rows).
  int useful_bits = 0;
};

struct GroupPlan {
  std::vector<std::string> fields;   // sorted
  std::vector<std::string> indexes;  // in schema order
  double domain = 0;       // distinct combinations of the fields, at most rows
  double budget_bits = 0;  // log2(rows / min_matches)
  double combined_bits = 0;         // min(sum of effective bits, log2 domain)
  double rows_per_fingerprint = 0;  // max(1, rows / 2^combined_bits)
  bool accepted = false;
};

struct TablePlan {
  std::string table;
  uint64_t rows = 0;
  uint64_t min_matches = 2;
  std::vector<IndexPlan> indexes;      // in schema order
  std::vector<GroupPlan> groups;       // in the order of their first index
  bool accepted = false;               // no refusals
  std::vector<std::string> reasoning;  // one line each, in order
  std::vector<std::string> warnings;   // accepted, but worth a look
  std::vector<std::string>
      refusals;  // each names the index, field, numbers and fix
  const IndexPlan* Index(absl::string_view name) const;
  const GroupPlan* GroupOf(absl::string_view field) const;
};

// Plans `table`'s blind indexes for `rows` rows.  A plan that breaks the
// constraint is returned with accepted == false and its refusals; it is
// not an error.  Errors: kInvalidArgument when rows == 0,
// options.min_matches < 2, or an index has no columns or bits outside
// 0..kMaxIndexBits (a schema from FieldSchema::Parse never does).
absl::StatusOr<TablePlan> PlanIndexes(const TableSchema& table, uint64_t rows,
                                      const PlanOptions& options = {});

// The bits to build each of `table`'s indexes with at `rows` rows, auto
// resolved, by index name (what `keyward index rebuild` writes).  Errors:
// as PlanIndexes, and kFailedPrecondition naming the refusals when the
// plan is refused.
absl::StatusOr<std::map<std::string, int>> IndexBits(
    const TableSchema& table, uint64_t rows, const PlanOptions& options = {});

}  // namespace keyward::fields

#endif  // KEYWARD_FIELDS_INDEX_PLANNER_H_
