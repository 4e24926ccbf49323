#include "cli/flags.h"

#include "absl/strings/str_cat.h"
#include "base/duration.h"
#include "cli/cli.h"

namespace keyward::cli {

absl::StatusOr<std::map<std::string, std::string>> ParsePairs(
    const std::vector<std::string>& pairs, const char* flag) {
  std::map<std::string, std::string> out;
  for (const std::string& p : pairs) {
    const size_t eq = p.find('=');
    if (eq == std::string::npos || eq == 0) {
      return UsageError(absl::StrCat(flag, " wants KEY=VALUE, got '", p, "'"));
    }
    out[p.substr(0, eq)] = p.substr(eq + 1);
  }
  return out;
}

absl::StatusOr<absl::Duration> ParseDurationFlag(const std::string& text, const char* flag) {
  auto d = ParseHumanDuration(text);
  if (!d.ok()) return UsageError(absl::StrCat(flag, ": ", d.status().message()));
  return *d;
}

absl::StatusOr<absl::Time> ParseTimeFlag(const std::string& text, const char* flag,
                                         absl::Time now) {
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &err)) return t;
  if (auto d = ParseHumanDuration(text); d.ok()) return now - *d;
  return UsageError(absl::StrCat(flag, ": '", text,
                                 "' is neither a time such as 2026-11-27T10:00:00Z "
                                 "nor a duration such as 1h (meaning 1 hour ago)"));
}

}  // namespace keyward::cli
