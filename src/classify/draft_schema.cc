#include "classify/draft_schema.h"

#include <map>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace keyward::classify {
namespace {

// A YAML scalar: plain when it is an identifier that YAML reads as a
// string, double-quoted otherwise.
std::string Scalar(absl::string_view s) {
  bool plain =
      !s.empty() &&
      (absl::ascii_isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_');
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    plain = plain && (absl::ascii_isalnum(u) || c == '_' || c == '-');
  }
  static const std::set<std::string> kReserved = {
      "true", "false", "yes", "no", "on", "off", "null", "y", "n"};
  if (plain && kReserved.count(absl::AsciiStrToLower(s)) == 0)
    return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20) {
      absl::StrAppendFormat(&out, "\\x%02x", u);
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

// YAML comments end at the line: keep them on one.
std::string OneLine(absl::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

}  // namespace

std::string DraftSchema(const ScanResult& scan, absl::Time now) {
  std::map<std::string, std::vector<const ColumnReport*>> by_table;
  std::set<std::string> classes;
  for (const ColumnReport& c : scan.columns) {
    if (!c.sensitive()) continue;
    by_table[c.table].push_back(&c);
    classes.insert(std::string(ClassOf(*c.kind)));
  }
  std::string y = absl::StrCat(
      "# Draft from `keyward classify scan` on ", OneLine(scan.database), ", ",
      absl::FormatTime("%Y-%m-%d", now, absl::UTCTimeZone()),
      ". Review before use.\n", "version: 1\n",
      "dataset: ", Scalar(scan.dataset), "\n", "key: ", Scalar(scan.dataset),
      "            # the Keyward key that protects this data set\n",
      "# tenant_column: tenant_id\n");
  if (classes.empty()) {
    absl::StrAppend(&y, "classes: {}\n");
  } else {
    absl::StrAppend(&y, "classes:\n");
    for (const char* cls : {"pii", "pci", "secret"}) {
      if (classes.count(cls) > 0) {
        absl::StrAppend(&y, "  ", cls,
                        ": { encrypt: required, readers: [app] }\n");
      }
    }
  }
  if (by_table.empty()) {
    absl::StrAppend(&y, "tables: {}\n");
    return y;
  }
  absl::StrAppend(&y, "tables:\n");
  for (const TableReport& table : scan.tables) {
    auto it = by_table.find(table.name);
    if (it == by_table.end()) continue;
    absl::StrAppend(&y, "  ", Scalar(table.name), ":\n");
    if (table.id_column.empty()) {
      absl::StrAppend(&y,
                      "    id_column: id   # TODO: no primary key found; name "
                      "the column that "
                      "identifies a row\n");
    } else if (table.primary_key.size() > 1) {
      absl::StrAppend(&y, "    id_column: ", Scalar(table.id_column),
                      "   # TODO: the primary key is (",
                      OneLine(absl::StrJoin(table.primary_key, ", ")),
                      "); name one column that identifies a row\n");
    } else {
      absl::StrAppend(&y, "    id_column: ", Scalar(table.id_column), "\n");
    }
    absl::StrAppend(&y, "    fields:\n");
    for (const ColumnReport* c : it->second) {
      absl::StrAppend(
          &y, "      ", Scalar(c->column), ": { class: ", ClassOf(*c->kind),
          ", treatment: randomized }   # ", KindDescription(*c->kind), ": ",
          c->matches, " of ", c->sampled, " sampled\n");
    }
  }
  return y;
}

}  // namespace keyward::classify
