// Human durations for configs and the CLI: "90d", "24h", "15m", "30s",
// combinations such as "1d12h", and "0" for none.
#ifndef KEYWARD_BASE_DURATION_H_
#define KEYWARD_BASE_DURATION_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace keyward {

// Errors: kInvalidArgument naming the text.
absl::StatusOr<absl::Duration> ParseHumanDuration(absl::string_view text);
// The shortest exact form: "90d", "36h", "0".
std::string FormatHumanDuration(absl::Duration d);

}  // namespace keyward

#endif  // KEYWARD_BASE_DURATION_H_
