#include "appdb/sql_text.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace keyward::appdb {
namespace {

bool IsIdentifierChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         c == '$' || (static_cast<unsigned char>(c) & 0x80) != 0;
}

// Copies the quoted run starting at sql[i] (quote character q, doubled q
// escapes itself, and a backslash too in PostgreSQL's E'...' strings) and
// returns the index after it.
size_t CopyQuoted(absl::string_view sql, size_t i, char q, bool backslash,
                  std::string& out) {
  out.push_back(sql[i++]);
  while (i < sql.size()) {
    const char c = sql[i++];
    out.push_back(c);
    if (backslash && c == '\\' && i < sql.size()) {
      out.push_back(sql[i++]);
      continue;
    }
    if (c == q) {
      if (i < sql.size() && sql[i] == q) {
        out.push_back(sql[i++]);
        continue;
      }
      break;
    }
  }
  return i;
}

// The length of a PostgreSQL dollar-quote tag ($$ or $tag$) at sql[i], or 0.
size_t DollarTagLength(absl::string_view sql, size_t i) {
  size_t j = i + 1;
  if (j < sql.size() && absl::ascii_isdigit(static_cast<unsigned char>(sql[j])))
    return 0;
  while (j < sql.size() && sql[j] != '$') {
    if (!IsIdentifierChar(sql[j]) || sql[j] == '$') return 0;
    ++j;
  }
  return j < sql.size() ? j - i + 1 : 0;
}

}  // namespace

absl::StatusOr<Placeholders> ScanPlaceholders(absl::string_view sql) {
  Placeholders result;
  std::string& out = result.sqlite_sql;
  out.reserve(sql.size());
  size_t i = 0;
  while (i < sql.size()) {
    const char c = sql[i];
    const bool word_start = i == 0 || !IsIdentifierChar(sql[i - 1]);
    if (c == '\'' || c == '"' || c == '`') {
      const bool escape_string = c == '\'' && i > 0 &&
                                 (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                                 (i == 1 || !IsIdentifierChar(sql[i - 2]));
      i = CopyQuoted(sql, i, c, escape_string, out);
    } else if (size_t tag =
                   c == '$' && word_start ? DollarTagLength(sql, i) : 0;
               tag > 0) {
      // A dollar-quoted string: its body is text, not parameters.
      const size_t end = sql.find(sql.substr(i, tag), i + tag);
      const size_t stop =
          end == absl::string_view::npos ? sql.size() : end + tag;
      absl::StrAppend(&out, sql.substr(i, stop - i));
      i = stop;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      const size_t end = sql.find('\n', i);
      const size_t stop = end == absl::string_view::npos ? sql.size() : end;
      absl::StrAppend(&out, sql.substr(i, stop - i));
      i = stop;
    } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      const size_t end = sql.find("*/", i + 2);
      const size_t stop = end == absl::string_view::npos ? sql.size() : end + 2;
      absl::StrAppend(&out, sql.substr(i, stop - i));
      i = stop;
    } else if (c == '$' && word_start && i + 1 < sql.size() &&
               absl::ascii_isdigit(static_cast<unsigned char>(sql[i + 1]))) {
      size_t j = i + 1;
      int n = 0;
      while (j < sql.size() &&
             absl::ascii_isdigit(static_cast<unsigned char>(sql[j]))) {
        if (n > 999) break;
        n = n * 10 + (sql[j] - '0');
        ++j;
      }
      if (n < 1 || n > 999) {
        return absl::InvalidArgumentError(absl::StrCat(
            "parameters are numbered $1 to $999; found $",
            sql.substr(i + 1, j - i - 1), " in: ", SqlForMessage(sql)));
      }
      absl::StrAppend(&out, "?", n);
      if (n > result.max_index) result.max_index = n;
      i = j;
    } else {
      out.push_back(c);
      ++i;
    }
  }
  return result;
}

std::string SqlForMessage(absl::string_view sql) {
  constexpr size_t kMax = 80;
  std::string out;
  bool space = false;
  for (char c : absl::StripAsciiWhitespace(sql)) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      space = true;
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    // Cut only at a character boundary (not before a UTF-8 continuation byte).
    if (out.size() >= kMax && (static_cast<unsigned char>(c) & 0xC0) != 0x80) {
      out.append("…");
      break;
    }
    out.push_back(c);
  }
  return out;
}

absl::Status CheckParameterCount(absl::string_view sql, int max_index,
                                 size_t given) {
  if (given == static_cast<size_t>(max_index)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "the statement uses ",
      max_index == 0 ? "no parameters" : absl::StrCat("$1..$", max_index),
      " but ", given, " value(s) were given: ", SqlForMessage(sql)));
}

}  // namespace keyward::appdb
