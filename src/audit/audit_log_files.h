// The audit log directory's files as AuditLog's parts share them: paths,
// the time format written in them, and the error for a rewritten log.
#ifndef KEYWARD_AUDIT_AUDIT_LOG_FILES_H_
#define KEYWARD_AUDIT_AUDIT_LOG_FILES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace keyward::audit {

inline std::string Path(const std::string& dir, const char* file) {
  return absl::StrCat(dir, "/", file);
}

inline std::string IsoTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

// Open refuses a log that is not the one keywardd wrote: kDataLoss saying
// `why` and what the operator can do (`verify`: LogStorage::VerifyCommand).
absl::Status Tampered(absl::string_view why,
                      absl::string_view verify = "keyward audit verify --log DIR");

}  // namespace keyward::audit

#endif  // KEYWARD_AUDIT_AUDIT_LOG_FILES_H_
