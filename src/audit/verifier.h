// Checks an audit log directory offline: the record chain (sequence numbers
// and previous-record hashes), the Merkle tree against every signed
// checkpoint, each checkpoint's signature, and optionally a checkpoint the
// auditor saved earlier (which also catches truncation and a swapped key).
#ifndef KEYWARD_AUDIT_VERIFIER_H_
#define KEYWARD_AUDIT_VERIFIER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "audit/audit_log.h"

namespace keyward::audit {

// What `keyward audit checkpoint -o FILE` saves: a signed checkpoint and the
// public key that signed it.
struct SavedCheckpoint {
  Checkpoint checkpoint;
  std::string public_key_pem;
};
std::string SerializeSavedCheckpoint(const SavedCheckpoint& saved);
absl::StatusOr<SavedCheckpoint> ParseSavedCheckpoint(absl::string_view text);

struct VerifyReport {
  uint64_t records = 0;
  uint64_t checkpoints = 0;
  bool ok = true;
  std::string problem;                      // the first problem, for people
  std::optional<uint64_t> first_bad_record;  // its position, when known
  double seconds = 0;
};

// Errors only for a directory that cannot be read; a tampered log is an OK
// status with report.ok == false.
absl::StatusOr<VerifyReport> VerifyAuditLog(const std::string& dir,
                                            const std::optional<SavedCheckpoint>& pinned);

}  // namespace keyward::audit

#endif  // KEYWARD_AUDIT_VERIFIER_H_
