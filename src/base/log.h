// keywardd's log: one line per event on stderr, as JSON or text.
//
// The redaction rule: a log line carries event names, identifiers (request
// ids, key names and versions, RPC names, result codes) and error messages,
// which by the project's error rules never contain key material, plaintext
// or encryption context values.  Never pass any of those as a field.
// src/server/observability_e2e_test.cc checks it with canaries.
#ifndef KEYWARD_BASE_LOG_H_
#define KEYWARD_BASE_LOG_H_

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace keyward {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// "debug", "info", "warning" (or "warn"), "error".
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name);

// Process-wide: JSON lines (else text) at or above `min_level`.  Before the
// first call: text at info.
void ConfigureLog(bool json, LogLevel min_level);
bool LogEnabled(LogLevel level);

using LogField = std::pair<absl::string_view, std::string>;

// One line: time, level, event, message, then the fields in order.
//   text: 2026-11-28T03:30:00.123Z INFO request: msg request_id=ab12 code=OK
//   json: {"time":"...","level":"info","event":"request","msg":"...","request_id":"ab12",...}
void Log(LogLevel level, absl::string_view event, absl::string_view message,
         std::initializer_list<LogField> fields = {});

}  // namespace keyward

#endif  // KEYWARD_BASE_LOG_H_
