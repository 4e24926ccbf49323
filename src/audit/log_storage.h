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
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace keyward::audit {

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
};

// records.log, checkpoints.log and checkpoint-keys.pem in `dir` (created,
// mode 0700, when absent): the format docs/audit.md describes.  Appends
// are one write + fdatasync; a failed append is cut back.
std::shared_ptr<LogStorage> OpenFileLogStorage(const std::string& dir);
// Lines in process memory only (lost on exit): benchmarks.
std::shared_ptr<LogStorage> OpenMemoryLogStorage();

}  // namespace keyward::audit

#endif  // KEYWARD_AUDIT_LOG_STORAGE_H_
