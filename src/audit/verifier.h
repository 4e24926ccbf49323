// Checks an audit log directory (or the logs in PostgreSQL) offline: the record chain (sequence numbers
// and previous-record hashes), the Merkle tree against every signed
// checkpoint, each checkpoint's signature under a key the auditor pinned,
// and optionally a checkpoint the auditor saved earlier (which also catches
// truncation).  The trust anchors come from outside the directory: a log
// whose records were rewritten and whose checkpoints were re-signed with
// another key — its public key dropped in the directory — fails.
// docs/audit.md says what each mode proves and what it cannot.
#ifndef KEYWARD_AUDIT_VERIFIER_H_
#define KEYWARD_AUDIT_VERIFIER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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
  uint64_t records = 0;      // records checked (from first_record on)
  uint64_t first_record = 0;  // > 0 when the log starts after pruned history
  uint64_t pruned = 0;        // records known only by their compact range
  uint64_t segments = 0;
  uint64_t checkpoints = 0;   // checked against the records (or pruned history)
  uint64_t pruned_checkpoints = 0;  // signatures valid, records pruned: not compared
  uint64_t later_checkpoints = 0;   // archives only: beyond their last record
  bool ok = true;
  std::string problem;                      // the first problem, for people
  std::optional<uint64_t> first_bad_record;  // its position, when known
  double seconds = 0;
};

// The checkpoint signing keys the verifier trusts, from outside the log:
// public keys (PEM), or fingerprints (hex SHA-256 of the key's SPKI, as
// `keyward dev init` and `keyward server-info` print) that select keys from
// the log directory's checkpoint-keys.pem.  A saved checkpoint's key counts
// as trusted too (the auditor's own file).
struct CheckpointTrust {
  std::vector<std::string> public_keys_pem;
  std::vector<std::string> fingerprints;
};

// Errors: kInvalidArgument when no key is trusted at all (nothing to check
// signatures against), or a pinned key is unusable; kDataLoss when no
// pinned fingerprint matches a key the log was signed with; kNotFound for a
// directory without a log.  A tampered log is otherwise an OK status with
// report.ok == false.
absl::StatusOr<VerifyReport> VerifyAuditLog(const std::string& dir,
                                            const CheckpointTrust& trust,
                                            const std::optional<SavedCheckpoint>& saved);

// The same checks over a live log directory and any number of archive
// directories (`keyward audit archive`), taken together: every segment
// found, whichever directory holds it, in order from the first.  Besides
// the checks above it fails on a gap between segments (a segment missing
// from all of them), a segment whose copies differ, a segment whose digest
// is not the one its signed closing checkpoint names (altered or
// substituted), and a log whose first segment starts after record 0 with
// no signed compact range of what came before (pruned.json, or an
// archive's prefix file).  With the live log alone after a prune, it
// proves the retained records and that they extend the pruned history's
// signed root; checkpoints older than that are counted in
// pruned_checkpoints unless the kept consistency proofs reach them.
struct VerifySources {
  std::string live_dir;                   // may be empty: archives only
  std::vector<std::string> archive_dirs;
};
absl::StatusOr<VerifyReport> VerifyAuditLogDirs(const VerifySources& sources,
                                                const CheckpointTrust& trust,
                                                const std::optional<SavedCheckpoint>& saved);

// The same checks on audit logs in PostgreSQL (audit/postgres_storage.h),
// one log per keywardd replica: every log in the database, or the named
// ones.  Besides what VerifyAuditLog finds in each log, a log fails when it
// is named but absent, when it is listed in keyward_audit_logs but holds no
// records (they were deleted), or when no trusted key signed it (the
// published keys are per log, in keyward_audit_keys).  `pinned` applies to
// every log verified: pass it with one log id.  Errors: kInvalidArgument
// when no key is trusted at all; kNotFound for a database without audit
// logs; kUnavailable (and the other appdb::Database::Open errors) when the
// database cannot be read.  Tampering is an OK status with a report whose
// ok is false.
struct LogVerifyReport {
  std::string log_id;
  VerifyReport report;
};
absl::StatusOr<std::vector<LogVerifyReport>> VerifyAuditLogsInDatabase(
    const std::string& url, const std::vector<std::string>& log_ids,
    const CheckpointTrust& trust, const std::optional<SavedCheckpoint>& pinned);

}  // namespace keyward::audit

#endif  // KEYWARD_AUDIT_VERIFIER_H_
