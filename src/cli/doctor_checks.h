// The judgements of `keyward doctor`, apart from how it gathers the facts:
// each takes what was read from keywardd (or a file) and says whether it is
// fine, worth a warning, or a failure, and what to do.
#ifndef KEYWARD_CLI_DOCTOR_CHECKS_H_
#define KEYWARD_CLI_DOCTOR_CHECKS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cli/certificates.h"
#include "keyward/admin_client.h"

namespace keyward::cli::doctor {

enum class Level { kOk, kSkipped, kWarning, kFailure };
absl::string_view LevelName(Level level);  // "OK", "SKIPPED", "WARNING", "FAIL"

struct Finding {
  std::string check;  // "server", "certificates", "audit", ...
  Level level = Level::kOk;
  std::string finding;  // what was found, one line
  std::string fix;      // what to do ("" when nothing)
};

// 2 with any failure, else 1 with any warning, else 0.
int ExitCode(const std::vector<Finding>& findings);

// Past its notAfter (or not yet valid): failure; within `warn`: warning.
Finding CertificateExpiry(const CertificateInfo& cert, absl::Time now, absl::Duration warn);

// The skew between keywardd's clock (read between `sent` and `received` on
// this machine's clock) and this machine's, less the round trip's
// uncertainty: over 2 s a warning (audit times, grant expiry and
// certificate validity disagree), over 60 s a failure.
Finding ClockSkew(absl::Time server_time, absl::Time sent, absl::Time received);

// The last signed checkpoint's age: a warning past an hour (keywardd signs
// one every audit.checkpoint_interval while records arrive, 60 s by
// default), a failure past a day.
Finding CheckpointAge(absl::Duration age);

// A key with a rotation period whose primary version is older than the
// period plus a tenth of it (at most an hour): the scheduler should have
// rotated it.
std::optional<Finding> RotationOverdue(const KeyInfo& key, absl::Time now);

// Versions pending destruction or compromised that data still uses: rows on
// them in a data set's latest report, or (pending destruction) a decrypt in
// the last 7 days.  Pending destruction: a failure (that data becomes
// unreadable); compromised: a warning (re-encrypt it).
std::vector<Finding> VersionsStillUsed(const KeyInfo& key,
                                       const std::vector<DataSetReportInfo>& reports,
                                       absl::Time now);

}  // namespace keyward::cli::doctor

#endif  // KEYWARD_CLI_DOCTOR_CHECKS_H_
