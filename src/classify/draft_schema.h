// The draft field schema `keyward classify scan` prints: YAML in the field
// schema's format (docs/fields.md) with one field per sensitive column, for
// an engineer to review before use.
#ifndef KEYWARD_CLASSIFY_DRAFT_SCHEMA_H_
#define KEYWARD_CLASSIFY_DRAFT_SCHEMA_H_

#include <string>

#include "absl/time/time.h"
#include "classify/scan.h"

namespace keyward::classify {

// The draft for the sensitive columns of `scan` (ColumnReport::sensitive),
// dated `now` (UTC).  Lists only the classes it uses and the tables with a
// sensitive column; a table without a primary key gets `id_column: id`
// and a TODO comment.  Names that are not plain identifiers are quoted.
std::string DraftSchema(const ScanResult& scan, absl::Time now);

}  // namespace keyward::classify

#endif  // KEYWARD_CLASSIFY_DRAFT_SCHEMA_H_
