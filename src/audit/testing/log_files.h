// A log directory's records as JSON lines, read and written back (tests
// only): what an attacker who can write the directory edits.
#ifndef KEYWARD_AUDIT_TESTING_LOG_FILES_H_
#define KEYWARD_AUDIT_TESTING_LOG_FILES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "audit/merkle.h"

namespace keyward::audit::testing {

// Every record of the live segments of `dir` (a records.log too), as the
// JSON lines readers see.
absl::StatusOr<std::vector<std::string>> ReadLogLines(const std::string& dir);

// The open segment's file (the last one), where new records go.
std::string OpenSegmentPath(const std::string& dir);

// Replaces every segment of `dir` by one segment (starting at the first
// retained record) holding `lines` re-encoded: "seq" and "prev" as the
// lines say, unless `rechain`, which numbers them from the first and
// rebuilds the chain.  Returns the leaf hashes written.
absl::StatusOr<std::vector<Hash>> WriteLogLines(const std::string& dir,
                                                const std::vector<std::string>& lines,
                                                bool rechain = false);

// The same as text: the JSON lines, each ending in a newline (what
// records.log held before segments), and back (not rechained).  Dies on
// error (tests only).
std::string ReadLogText(const std::string& dir);
void WriteLogText(const std::string& dir, const std::string& text);

}  // namespace keyward::audit::testing

#endif  // KEYWARD_AUDIT_TESTING_LOG_FILES_H_
