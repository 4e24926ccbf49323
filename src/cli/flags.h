// Parsing of flag values shared by the command groups; every error is a
// usage error (exit 2) naming the flag.
#ifndef KEYWARD_CLI_FLAGS_H_
#define KEYWARD_CLI_FLAGS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace keyward::cli {

// "KEY=VALUE" pairs (repeatable flags such as --context, --label).
absl::StatusOr<std::map<std::string, std::string>> ParsePairs(
    const std::vector<std::string>& pairs, const char* flag);

// "90d", "24h", "15m", "30s", "500ms".
absl::StatusOr<absl::Duration> ParseDurationFlag(const std::string& text, const char* flag);

// An instant: RFC 3339 ("2026-11-27T10:00:00Z") or a duration meaning that
// long ago ("1h").
absl::StatusOr<absl::Time> ParseTimeFlag(const std::string& text, const char* flag,
                                         absl::Time now);

}  // namespace keyward::cli

#endif  // KEYWARD_CLI_FLAGS_H_
