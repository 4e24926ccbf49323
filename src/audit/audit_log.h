// The audit log: every request to keywardd becomes one record, durable before
// the response leaves the server.
//
// Durability and speed: records are appended by one writer thread that
// commits whatever is queued with a single write and fdatasync (group
// commit), so the cost of an fsync is shared by every request waiting for it.
// Fail closed: if a record cannot be made durable within max_wait, Append
// returns kUnavailable ("the audit log is unavailable: ...") and the caller
// must not answer; while the log is failing, new requests are refused at
// once (counted, and summarized in a record when the log recovers), Health()
// says why, and the writer keeps retrying until the disk takes the records
// again.  Nothing queued is ever dropped.
//
// Tamper evidence: records are the leaves of an RFC 6962 Merkle tree; a
// signed checkpoint (tree size, root, time) is appended every
// checkpoint_interval and on shutdown, signed by a key held in the HSM.
// docs/audit.md describes the files; audit/verifier.h checks them.
//
// Storage: a directory (AuditLogOptions::dir), or any LogStorage
// (AuditLogOptions::storage), such as a log in PostgreSQL
// (audit/postgres_storage.h) that outlives the machine keywardd runs on.
//
// Thread-safety: every method is safe to call concurrently.
#ifndef KEYWARD_AUDIT_AUDIT_LOG_H_
#define KEYWARD_AUDIT_AUDIT_LOG_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audit/log_storage.h"
#include "audit/merkle.h"
#include "audit/record.h"
#include "hsm/root_of_trust.h"

namespace keyward::audit {

inline constexpr char kRecordsFile[] = "records.log";
inline constexpr char kCheckpointsFile[] = "checkpoints.log";
inline constexpr char kKeysFile[] = "checkpoint-keys.pem";

// The log's history as keywardd last sealed it, kept outside the log
// directory where whoever can rewrite the directory cannot forge it:
// keywardd keeps the latest checkpoint's size and root sealed by the HSM
// root key in its key store (server.cc).
class CheckpointAnchor {
 public:
  virtual ~CheckpointAnchor() = default;
  struct Anchor {
    uint64_t tree_size = 0;
    Hash root{};
  };
  // nullopt when nothing was ever anchored.
  virtual absl::StatusOr<std::optional<Anchor>> Load() = 0;
  virtual absl::Status Store(const Anchor& anchor) = 0;
};

struct AuditLogOptions {
  // Where records.log and checkpoints.log live.  Empty (and no `storage`):
  // in memory only, which is accepted for benchmark environments alone.
  std::string dir;
  // Where the log lives instead of `dir` (which must then be empty): e.g.
  // OpenPostgresAuditStorage(url, log_id) for one keywardd replica's log in
  // PostgreSQL.  Open loads it; the log keeps it until destroyed.
  std::shared_ptr<LogStorage> storage;
  std::string environment;
  absl::Duration max_wait = absl::Seconds(2);
  size_t max_pending = 100000;
  absl::Duration checkpoint_interval = absl::Seconds(60);
  // Checkpoints are signed with this HSM key (created when absent).
  hsm::RootOfTrust* signer = nullptr;
  std::string signing_key_label;
  // Optional: where each checkpoint is anchored, and checked at Open.
  CheckpointAnchor* anchor = nullptr;
  // The operator starts a new log on purpose (keywardd --new-audit-log):
  // an empty directory is accepted although the anchor names an older
  // log, and the anchor starts over.  Open then reports the old anchor
  // (replaced_anchor()) for the new log's first record.
  bool allow_new_log = false;
  // The operator vouches for a log the key store holds no anchor for
  // (keywardd --adopt-audit-log): a log from before anchoring, or a key
  // store restored without it.  Open checks the log against its own
  // signed checkpoints only and anchors it as it is (adopted_records()).
  // Without it such a log is refused: a deleted anchor would otherwise let
  // the log be cut back to an earlier checkpoint unnoticed.
  bool adopt_log = false;
  // Segments of a log directory (dir): closed by size or age, each with a
  // signed checkpoint of the log up to its last record that names its
  // SHA-256.
  SegmentLimits segments;
  // Automatic retention (audit.retention): every retention_interval,
  // closed segments are archived to retention_archive_dir (when set), and
  // archived segments whose last record is older than retention_keep are
  // pruned (unarchived ones too when retention_force, recorded).  Zero
  // retention_keep: nothing is pruned automatically.
  absl::Duration retention_keep = absl::ZeroDuration();
  std::string retention_archive_dir;
  bool retention_force = false;
  absl::Duration retention_interval = absl::Minutes(10);
};

// The segment a checkpoint closes (checkpoint format v2).
struct ClosedSegment {
  uint64_t first = 0, count = 0;
  Hash sha256{};
};

struct Checkpoint {
  std::string environment;
  uint64_t tree_size = 0;
  Hash root{};
  absl::Time time;
  std::optional<ClosedSegment> segment;
  std::string key_fingerprint;  // SHA-256 of the signing key's SPKI, hex
  std::string signature;        // DER ECDSA-SHA256, raw bytes
  std::string line;             // as stored in checkpoints.log
};

// The bytes a checkpoint signature covers: v1, or v2 naming the segment
// it closes.
std::string CheckpointMessage(absl::string_view environment, uint64_t tree_size,
                              const Hash& root, absl::Time time,
                              const std::optional<ClosedSegment>& segment = std::nullopt);
inline std::string CheckpointMessage(const Checkpoint& c) {
  return CheckpointMessage(c.environment, c.tree_size, c.root, c.time, c.segment);
}
// Parses one checkpoints.log line.  Errors: kDataLoss.
absl::StatusOr<Checkpoint> ParseCheckpoint(absl::string_view line);

struct RecordFilter {
  std::optional<absl::Time> since, until;
  std::string principal, key, operation, decision;
  std::map<std::string, std::string> context;  // as recorded (values HMAC'd)
  bool empty() const {
    return !since && !until && principal.empty() && key.empty() && operation.empty() &&
           decision.empty() && context.empty();
  }
  bool Matches(const AuditRecord& record) const;
  bool Matches(absl::string_view line) const;  // parses the JSON
};

class AuditLog {
 public:
  // Opens (creating) the log, re-reads existing records into the tree
  // (truncating a record torn by a crash: it was never acknowledged), loads
  // or creates the signing key, and starts the writer and checkpointer.
  // Before accepting an existing log it checks it: every record chains to
  // the one before, every checkpoint's root matches the records, the latest
  // checkpoint is signed by the HSM key, and the log extends the anchored
  // checkpoint.  Errors: kDataLoss naming the first inconsistency — a log
  // that was rewritten (and perhaps re-signed with another key) is never
  // signed by the real key afterwards; kUnavailable for I/O.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(AuditLogOptions options);
  // Drains the queue (bounded by max_wait), writes a final checkpoint.
  ~AuditLog();

  // Records `record` and calls `done` once it is durable (OK), or with
  // kUnavailable (audit-unavailable) when it cannot be made durable within
  // max_wait or the log is failing.  `done` runs exactly once, on the
  // caller's thread (refusals) or on the log's writer or watcher thread;
  // it must not block.  A record whose caller was answered UNAVAILABLE is
  // still written later, marked "response withheld".
  void Submit(AuditRecord record, std::function<void(absl::Status)> done);
  // Submit, blocking until `done` would run.  Errors: kUnavailable.
  absl::Status Append(AuditRecord record);
  // Queues `record` without waiting (for events with no caller to answer,
  // such as failed TLS handshakes).  Dropped only if the queue is full, and
  // then counted in the next gap record.
  void AppendAsync(AuditRecord record);

  // OK, or kUnavailable naming why records cannot be written.
  absl::Status Health() const;
  uint64_t size() const { return tree_.size(); }  // durable records
  const std::string& public_key_pem() const { return public_key_pem_; }
  // SHA-256 of the checkpoint signing key's SubjectPublicKeyInfo, hex.
  const std::string& key_fingerprint() const { return key_fingerprint_; }
  // When Open started a new log over an older anchor (allow_new_log).
  const std::optional<CheckpointAnchor::Anchor>& replaced_anchor() const {
    return replaced_anchor_;
  }
  // When Open anchored an unanchored log on request (adopt_log): its size.
  std::optional<uint64_t> adopted_records() const { return adopted_records_; }

  // Signs and stores a checkpoint of the current tree now.
  absl::StatusOr<Checkpoint> MakeCheckpoint();
  // The same, of the first `size` records, naming the segment it closes.
  absl::StatusOr<Checkpoint> MakeCheckpointAt(uint64_t size,
                                              const std::optional<ClosedSegment>& segment);
  absl::StatusOr<Checkpoint> LatestCheckpoint() const;

  absl::StatusOr<Hash> Root(uint64_t n) const { return tree_.Root(n); }
  absl::StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t n) const {
    return tree_.InclusionProof(index, n);
  }
  absl::StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t m, uint64_t n) const {
    return tree_.ConsistencyProof(m, n);
  }
  absl::StatusOr<Hash> LeafAt(uint64_t index) const;

  // Up to `limit` records from `from` on that match `filter`, as stored,
  // scanning at most 200,000 records per call.  `next` receives the index to
  // continue from (== size() when the log has been read to its end).
  absl::StatusOr<std::vector<std::string>> Read(uint64_t from, size_t limit,
                                                const RecordFilter& filter,
                                                uint64_t* next) const;

  // Segments (a log directory): closed ones oldest first, the open one
  // last, each with its archive mark.  Empty for other storage.
  std::vector<SegmentStatus> Segments() const { return storage_->Segments(); }
  // The records pruned from the live log (0 when none).
  uint64_t pruned() const { return tree_.pruned(); }

  // Removes closed segments whose last record is before `before`, oldest
  // first, keeping the compact range of what they held (pruned.json), so
  // that the live log still proves it extends them.  Refused
  // (kFailedPrecondition, naming them) when a segment to remove was not
  // archived with its current digest, unless `force`.  Recorded before
  // anything is removed (operation prune-audit-log) and after.  A dry run
  // says what would be removed.  Errors: kFailedPrecondition as above or
  // for storage without segments; kUnavailable.
  struct PruneRequest {
    absl::Time before;
    bool force = false;
    bool dry_run = false;
    std::string principal;
    std::string request_id;
    std::string peer;
    std::string reason;
  };
  struct PruneResult {
    std::vector<SegmentStatus> segments;  // removed (or that would be)
    uint64_t pruned_before = 0, pruned_after = 0;  // records pruned, before and after
    std::vector<SegmentStatus> unarchived;         // among them, not archived
  };
  absl::StatusOr<PruneResult> Prune(const PruneRequest& request);
  // Signs now the checkpoints of segments closed since the checkpointer
  // last did (tests, and before archiving from the same process).
  absl::Status SignClosedSegments();
  // Notes that a closed segment was archived (after its copy was checked).
  absl::Status MarkArchived(const ArchiveMark& mark) { return storage_->MarkArchived(mark); }

  struct Stats {
    uint64_t batches = 0;
    uint64_t records = 0;
    uint64_t refused = 0;
    double last_fsync_ms = 0;
    size_t pending = 0;
  };
  Stats GetStats() const;

 private:
  explicit AuditLog(AuditLogOptions options)
      : options_(std::move(options)),
        storage_(options_.storage        ? options_.storage
                 : options_.dir.empty() ? OpenMemoryLogStorage()
                                        : OpenFileLogStorage(options_.dir, options_.segments)) {}
  absl::Status Load();
  // Checks the checkpoints (each line in `checkpoints`) and the anchor
  // against the records just loaded.
  absl::Status CheckHistory(const std::vector<std::string>& checkpoints);
  void WriterLoop();
  void WatchLoop();
  void CompletionLoop();
  void CheckpointLoop();
  // Closes the open segment when due, and signs its checkpoint (writer
  // thread, after the tree holds its records).
  void MaybeCloseSegment();
  // Closed segments that no checkpoint names yet (a crash between closing
  // and signing): signed now.
  absl::Status CloseUnclosedSegments(const std::vector<std::string>& checkpoints);
  void RetentionPass();
  // The leaf hash before record `index`, for its JSON "prev".  Errors:
  // kFailedPrecondition when it was pruned meanwhile.
  absl::StatusOr<Hash> PrevOf(uint64_t index) const;
  void FailAllLocked(const absl::Status& status);
  bool memory() const { return !storage_->durable(); }

  const AuditLogOptions options_;
  std::shared_ptr<LogStorage> storage_;
  bool opened_ = true;  // false when Open failed: the destructor leaves the files alone
  std::optional<CheckpointAnchor::Anchor> replaced_anchor_;
  std::optional<uint64_t> adopted_records_;
  std::string public_key_pem_;
  std::string key_fingerprint_;
  MerkleTree tree_;

  mutable std::mutex mu_;
  std::condition_variable writer_cv_;   // work for the writer
  std::condition_variable watch_cv_;    // stop for the watcher
  struct Pending {
    uint64_t seq;
    AuditRecord record;
    std::string body;  // SerializeRecordBody(record), made by the caller
    std::function<void(absl::Status)> done;  // null once answered
    absl::Time deadline;
    bool withheld = false;  // its caller was answered UNAVAILABLE
  };
  std::deque<Pending> pending_;         // GUARDED_BY(mu_)
  // The batch being written; re-serialized on each attempt so that a waiter
  // that gave up can still mark its record "response withheld".
  std::vector<Pending> inflight_;       // GUARDED_BY(mu_)
  uint64_t next_seq_ = 0;               // GUARDED_BY(mu_)
  bool writer_idle_ = false;            // GUARDED_BY(mu_): waiting for work
  bool healthy_ = true;                 // GUARDED_BY(mu_)
  std::string failure_;                 // GUARDED_BY(mu_)
  absl::Time failing_since_;            // GUARDED_BY(mu_)
  uint64_t refused_ = 0;                // GUARDED_BY(mu_): since the last gap record
  absl::Time refused_since_;            // GUARDED_BY(mu_)
  bool stopping_ = false;               // GUARDED_BY(mu_)
  Stats stats_;                         // GUARDED_BY(mu_)

  Hash prev_{};                         // writer thread only

  mutable std::mutex checkpoint_mu_;
  std::optional<Checkpoint> latest_;    // GUARDED_BY(checkpoint_mu_)
  std::optional<PrunedHistory> pruned_history_;  // GUARDED_BY(prune_mu_)
  mutable std::mutex prune_mu_;
  std::mutex prune_serial_;             // one Prune at a time
  std::set<uint64_t> closing_signed_;   // GUARDED_BY(checkpoint_mu_): segments with a checkpoint
  std::mutex closing_mu_;
  std::mutex sign_closed_mu_;           // SignClosedSegments, one at a time
  std::deque<ClosedSegment> closed_unsigned_;  // GUARDED_BY(closing_mu_): for the checkpointer
  absl::Time next_close_attempt_;       // writer thread only
  absl::Time last_retention_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  // Batches of callers to answer OK, handed from the writer.
  std::mutex completion_mu_;
  std::condition_variable completion_cv_;
  std::deque<std::vector<std::function<void(absl::Status)>>> completions_;  // GUARDED_BY(completion_mu_)
  bool completion_stop_ = false;  // GUARDED_BY(completion_mu_)

  std::thread writer_;
  std::thread watcher_;
  std::thread completer_;
  std::thread checkpointer_;
};

}  // namespace keyward::audit

#endif  // KEYWARD_AUDIT_AUDIT_LOG_H_
