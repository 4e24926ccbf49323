// Where an AuditLog keeps its records, checkpoints and published signing
// keys.  AuditLog does the chaining, the Merkle tree, the checks and the
// group commit; a LogStorage only stores lines, durably and in order.
//
// Implementations: the log directory (records.log, checkpoints.log,
// checkpoint-keys.pem: OpenFileLogStorage, the default when
// AuditLogOptions::dir is set), process memory (benchmarks), and a log in
// PostgreSQL (audit/postgres_storage.h), one log per keywardd replica.
//
// Thread-safety: AuditLog calls AppendRecords from its writer thread,
// AppendCheckpoint from the checkpointer or a caller of MakeCheckpoint,
// ReadRecords from readers, all concurrently; implementations serialize
// what needs it.
#ifndef KEYWARD_AUDIT_LOG_STORAGE_H_
#define KEYWARD_AUDIT_LOG_STORAGE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "audit/segment.h"

namespace keyward::audit {

struct SegmentStatus {
  uint64_t first = 0, count = 0, bytes = 0;
  bool json = false;    // a records.log from before segments
  bool closed = false;
  absl::Time created, first_time, last_time;
  Hash sha256{};        // of the file; final once closed
  std::string path;
  std::optional<ArchiveMark> archived;
};

class LogStorage {
 public:
  virtual ~LogStorage() = default;

  // Called once, by AuditLog::Open, before anything else: every stored
  // record in index order (a record torn by a crash was never acknowledged
  // and is dropped, not passed), then every checkpoint line in the order
  // written.  An error returned by a callback stops the load and is
  // returned.  Errors: kUnavailable when the storage cannot be read.
  virtual absl::Status Load(
      const std::function<absl::Status(absl::string_view)>& record,
      const std::function<absl::Status(absl::string_view)>& checkpoint) = 0;

  // Makes records first..first+lines.size()-1 (`lines` not empty) durable,
  // all or none; `first` is the number of records stored before.  When a
  // previous call failed with its outcome unknown (a connection lost during
  // COMMIT) and that batch did land, the lines stored then replace `*lines`
  // (they may differ from the retry's: a record marked "response withheld"
  // since), `*stored_earlier` is set, and nothing is written twice.
  // Errors: kUnavailable (AuditLog retries the same batch until it
  // succeeds).
  virtual absl::Status AppendRecords(uint64_t first,
                                     std::vector<std::string>* lines,
                                     bool* stored_earlier) = 0;

  // Appends one signed checkpoint line, durably.
  virtual absl::Status AppendCheckpoint(const std::string& line) = 0;

  // Publishes the checkpoint signing key (PEM) for verifiers, unless it is
  // already there; old keys stay (they verify old checkpoints).
  virtual absl::Status PublishKey(const std::string& public_key_pem) = 0;

  // Records from..from+count-1 as stored (only indices already appended).
  virtual absl::StatusOr<std::vector<std::string>> ReadRecords(
      uint64_t from, uint64_t count) const = 0;

  // Where the log is, for messages ("the audit log in /var/lib/keyward/audit").
  virtual std::string Describe() const = 0;
  // How an operator verifies this log, for messages
  // ("keyward audit verify --log DIR").
  virtual std::string VerifyCommand() const = 0;
  // False for the in-memory log (no fsync to measure).
  virtual bool durable() const { return true; }
  // True when records are stored in their binary encoding (a log
  // directory, memory); false for JSON lines (PostgreSQL).
  virtual bool binary_records() const { return false; }

  // Segments, archival and pruning: a log directory only.  Elsewhere
  // segmented() is false and the rest return kFailedPrecondition.
  virtual bool segmented() const { return false; }
  // Every segment held, oldest first; the last one is open.
  virtual std::vector<SegmentStatus> Segments() const { return {}; }
  // Whether the open segment holds records and is at its size or age limit.
  virtual bool SegmentDue(absl::Time /*now*/) const { return false; }
  // Closes the open segment (fsynced, read-only) and opens the next.
  // Errors: kUnavailable (nothing changed: records keep going to the open
  // segment).
  virtual absl::StatusOr<SegmentStatus> CloseSegment() { return Unsupported(); }
  // What Load must start the tree from: the pruned history, if any.
  // Called before Load.
  virtual absl::StatusOr<std::optional<PrunedHistory>> LoadPruned() { return std::nullopt; }
  // Makes `history` durable, then removes the segments it covers (closed
  // ones only).  After a crash in between, Load finishes the removal.
  virtual absl::Status Prune(const PrunedHistory& /*history*/) { return Unsupported(); }
  // Notes durably that a closed segment was archived.
  virtual absl::Status MarkArchived(const ArchiveMark& /*mark*/) { return Unsupported(); }

 protected:
  static absl::Status Unsupported() {
    return absl::FailedPreconditionError(
        "segments, archival and pruning are for audit logs in a directory (audit.dir); a "
        "log in PostgreSQL is retained by the database (docs/audit.md)");
  }
};

// Segment sizes (a log directory).
struct SegmentLimits {
  uint64_t max_bytes = 64 << 20;
  absl::Duration max_age = absl::Hours(24);
};

// segments/, checkpoints.log, checkpoint-keys.pem, pruned.json and
// archived.log in `dir` (created, mode 0700, when absent): the format
// audit/segment.h and docs/audit.md describe.  A records.log from before
// segments becomes the first segment.  Appends are one write + fdatasync;
// a failed append is cut back.
std::shared_ptr<LogStorage> OpenFileLogStorage(const std::string& dir,
                                               SegmentLimits limits = {});
// Lines in process memory only (lost on exit): benchmarks.
std::shared_ptr<LogStorage> OpenMemoryLogStorage();

}  // namespace keyward::audit

#endif  // KEYWARD_AUDIT_LOG_STORAGE_H_
