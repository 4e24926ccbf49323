// SQL text helpers shared by the two backends: the `$N` placeholders and the
// short form of a statement that error messages quote.
#ifndef KEYWARD_APPDB_SQL_TEXT_H_
#define KEYWARD_APPDB_SQL_TEXT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace keyward::appdb {

struct Placeholders {
  // The SQL with every `$N` outside literals, quoted identifiers and
  // comments replaced by `?N` (SQLite's numbered parameter).
  std::string sqlite_sql;
  // The highest N used; 0 when the statement takes no parameters.
  int max_index = 0;
};

// Scans `sql` for `$N` placeholders.  kInvalidArgument for `$0` or an N over
// 999 (SQLite's default limit on numbered parameters).
[[nodiscard]] absl::StatusOr<Placeholders> ScanPlaceholders(
    absl::string_view sql);

// The statement as error messages show it: whitespace runs collapsed, cut
// to about 80 characters.  Never includes parameter values.
std::string SqlForMessage(absl::string_view sql);

// "statement takes N parameter(s) ($1..$N) but M were given: SQL".
// kInvalidArgument when `given` != `max_index`.
[[nodiscard]] absl::Status CheckParameterCount(absl::string_view sql,
                                               int max_index, size_t given);

}  // namespace keyward::appdb

#endif  // KEYWARD_APPDB_SQL_TEXT_H_
