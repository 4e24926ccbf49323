// Archiving a log directory's closed segments: copies, checked against the
// digests their signed checkpoints name, to a directory an operator ships
// to object storage, with the checkpoints and signing keys that vouch for
// them and, when the archive does not start at record 0, the compact range
// of the records before it (prefix-<first>.json), so that the archive
// verifies on its own (`keyward audit verify --archive DIR`).
//
// The archive directory's layout is the live one's: segments/,
// checkpoints.log, checkpoint-keys.pem; archiving again into the same
// directory adds what is new and never overwrites a segment.
#ifndef KEYWARD_AUDIT_ARCHIVE_H_
#define KEYWARD_AUDIT_ARCHIVE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audit/segment.h"

namespace keyward::audit {

struct ArchiveOptions {
  std::string log_dir;      // the live audit directory (audit.dir)
  std::string archive_dir;  // created when absent
  absl::Time before = absl::InfiniteFuture();  // segments whose last record is before this
  std::string by;           // who archives, for archived.log
};

struct ArchivedSegment {
  uint64_t first = 0, count = 0;
  Hash sha256{};
  absl::Time last_time;
  bool already = false;  // the archive held it (same digest) before this run
  std::string file;      // its copy
};

struct ArchiveReport {
  std::vector<ArchivedSegment> segments;
  std::vector<std::string> skipped;  // closed segments left, and why
};

// Copies every closed segment of `log_dir` whose last record is before
// `before` and whose closing checkpoint is signed (the open segment never),
// then calls `mark` for each (to note it in archived.log).  Errors:
// kNotFound when `log_dir` holds no segmented log; kDataLoss when a segment
// does not match the digest its checkpoint names, or the archive already
// holds a different segment under the same name; kUnavailable for I/O.
absl::StatusOr<ArchiveReport> ArchiveSegments(
    const ArchiveOptions& options, const std::function<absl::Status(const ArchiveMark&)>& mark);

// The prefix file of an archive whose first segment starts at `first`.
std::string PrefixFileName(uint64_t first);

}  // namespace keyward::audit

#endif  // KEYWARD_AUDIT_ARCHIVE_H_
