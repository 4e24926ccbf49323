// The files of a segmented audit log directory (docs/audit.md "Files"):
//
//   segments/<first index, 20 digits>.seg     records first.. in binary
//   segments/00000000000000000000.jsonl       a records.log from before
//                                             segments, moved as it was
//   pruned.json     what is left of pruned history (PrunedHistory)
//   archived.log    one JSON line per segment archived (ArchiveMark)
//
// A .seg file: the 8 bytes "KWAUDSG1", the first index (8 bytes, little
// endian), the creation time (unix micros, 8 bytes, little endian), then
// each record as varint(length) + bytes.  A record is stored as its binary
// encoding (audit/record.h) with a string that already appeared in the
// same segment replaced by a reference to its first appearance; expanding
// the references gives back the encoding the Merkle leaf is computed over.
// A segment is closed (read-only, fsynced) once the next one exists.
#ifndef KEYWARD_AUDIT_SEGMENT_H_
#define KEYWARD_AUDIT_SEGMENT_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audit/merkle.h"
#include "audit/record.h"
#include "crypto/hash.h"

namespace keyward::audit {

inline constexpr char kSegmentsDir[] = "segments";
inline constexpr char kPrunedFile[] = "pruned.json";
inline constexpr char kArchivedFile[] = "archived.log";
inline constexpr size_t kSegmentHeaderBytes = 24;

std::string SegmentFileName(uint64_t first, bool json);
// The first index and kind named by a segment file name.  nullopt: not one.
std::optional<std::pair<uint64_t, bool>> ParseSegmentFileName(absl::string_view name);
std::string SegmentHeader(uint64_t first, absl::Time created);

// The strings a segment has seen, by order of first appearance; at most
// kMaxEntries of 3..255 bytes each.
class StringTable {
 public:
  static constexpr size_t kMaxEntries = 4096;
  const std::string* At(uint64_t index) const;
  std::optional<uint64_t> Find(absl::string_view s) const;
  // Adds `s` when new, eligible and there is room.
  void Note(absl::string_view s);
  size_t size() const { return entries_.size(); }
  // Forgets the entries from `n` on (a write that failed).
  void Truncate(size_t n);

 private:
  std::vector<std::string> entries_;
  absl::flat_hash_map<std::string, uint64_t> index_;
};

// A record's binary encoding with repeated strings as references, and
// back.  Both update `table` the same way.  Errors: kDataLoss.
absl::StatusOr<std::string> CompactRecord(absl::string_view canonical, StringTable* table);
absl::StatusOr<std::string> ExpandRecord(absl::string_view stored, StringTable* table);

// One segment file read from start to end.
struct SegmentScan {
  uint64_t first = 0;
  bool json = false;
  absl::Time created;
  uint64_t count = 0;
  uint64_t valid_bytes = 0;  // through the last complete record
  bool torn = false;         // bytes after it: an interrupted write
  Hash sha256{};             // of the file's first valid_bytes bytes
  absl::Time first_time, last_time;  // of its records, when any
  std::vector<uint64_t> offsets;     // of every kOffsetStride-th record
  StringTable table;                 // as it stands at the end
  crypto::Sha256Stream stream;       // the digest, to go on appending
};
inline constexpr uint64_t kOffsetStride = 64;

// Reads `path` (named by ParseSegmentFileName), calling `record` with each
// record's encoding (binary expanded, or the JSON line).  Errors:
// kNotFound, kUnavailable for I/O, kDataLoss for a bad header or record
// (a torn last record is not an error: scan->torn), or what `record` returns.
absl::StatusOr<SegmentScan> ScanSegment(
    const std::string& path,
    const std::function<absl::Status(absl::string_view record)>& record);

// What stays of pruned history: the compact range of the pruned records,
// the leaf hash of the last one (the next record's "prev"), and the
// consistency proofs between successive prune points, each of which is the
// size of a signed checkpoint that closed a segment.
struct PrunedHistory {
  uint64_t size = 0;
  std::vector<Hash> nodes;
  Hash last_leaf{};
  struct Hop {
    uint64_t from = 0, to = 0;
    Hash from_root{};
    std::vector<Hash> proof;
  };
  std::vector<Hop> hops;
  uint64_t segments = 0;  // segment files removed so far
  // Signed by keywardd's checkpoint key (PrunedMessage), so that deleting
  // the oldest segments and writing this file is not mistaken for a prune.
  // Empty in an archive's prefix file (computed by `keyward audit archive`).
  std::string environment;
  absl::Time time;
  std::string key_fingerprint;
  std::string signature;  // DER ECDSA-SHA256
};
// The bytes a pruned history's signature covers: environment, size, the
// root its compact range folds to, time.
std::string PrunedMessage(const PrunedHistory& p);
std::string SerializePruned(const PrunedHistory& p);
absl::StatusOr<PrunedHistory> ParsePruned(absl::string_view json);

// archived.log: a segment, its digest, and where it went.
struct ArchiveMark {
  uint64_t first = 0, count = 0;
  Hash sha256{};
  std::string destination;
  std::string by;
  absl::Time time;
};
std::string SerializeArchiveMark(const ArchiveMark& m);
absl::StatusOr<ArchiveMark> ParseArchiveMark(absl::string_view line);

// Writes `content` to `path` through a temporary file, fsyncs it and its
// directory: after a crash the file is the old or the new one, whole.
absl::Status WriteFileDurably(const std::string& path, absl::string_view content,
                              int mode = 0600);
// Appends one line durably (O_APPEND, fdatasync).
absl::Status AppendLineDurably(const std::string& path, absl::string_view line);
absl::Status SyncDirectory(const std::string& dir);

// Crash tests: kills the process (SIGKILL) at the step named by the
// environment variable KEYWARD_TEST_CRASH_AT, if it names `step`.  Steps:
// segment-created, segment-closed, prune-recorded, pruned-json-written,
// prune-half-removed.  Rare steps only (a getenv each).
void CrashPoint(const char* step);

}  // namespace keyward::audit

#endif  // KEYWARD_AUDIT_SEGMENT_H_
