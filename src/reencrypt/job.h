// `keyward reencrypt`: moves every message in a table column to its key's
// primary version, in batches, resumable, idempotent and crash-safe.
//
//   rewrap: the header's wrapped data keys are replaced inside keywardd
//           (BatchRewrapMessageHeaders), which verifies each new header
//           opens under the new version; the body is untouched.  Rows
//           already on the primary are left alone.
//   full:   each message is decrypted and encrypted again under a new data
//           key and the key's primary version (same encryption context),
//           and the new message is decrypted and compared before it is
//           stored.  For when a data key itself must be retired.
//
// Each batch's new values and the job's checkpoint commit in one
// transaction (reencrypt/table.h), so a crash at any moment leaves every
// row holding either its old message or a verified new one, and a rerun
// continues from the last committed batch.  At the end the job counts the
// rows per key version, reports them to keywardd (the retirement gate's
// evidence) and clears its checkpoint.
#ifndef KEYWARD_REENCRYPT_JOB_H_
#define KEYWARD_REENCRYPT_JOB_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "keyward/admin_client.h"
#include "keyward/data_client.h"
#include "reencrypt/table.h"

namespace keyward::reencrypt {

enum class Mode { kRewrap, kFull };

struct JobOptions {
  std::string key;  // only messages under this key; empty: every key
  Mode mode = Mode::kRewrap;
  size_t batch = 500;  // rows per transaction, 1..10000
  double rate = 0;     // rows per second at most; 0: unlimited
  bool dry_run = false;
  // Called after every batch (and once at the end).
  struct Progress {
    uint64_t done = 0, total = 0, changed = 0;
    double rows_per_s = 0;
    double eta_s = -1;  // unknown
  };
  std::function<void(const Progress&)> progress;
};

struct Report {
  std::string data_set;
  bool resumed = false;         // continued from a checkpoint
  uint64_t rows = 0;            // non-NULL rows in the column at the start
  uint64_t scanned = 0;         // rows decided by this run (after a resume: since it)
  uint64_t changed = 0;         // rows rewritten by this run (dry run: would be)
  uint64_t already_current = 0; // already on the primary (rewrap)
  uint64_t other_keys = 0;      // under another key than --key
  // Messages under a key this keywardd does not have: a raw key, another
  // environment's or deployment's key.  Left alone, and not reported.
  uint64_t unknown_keys = 0;
  uint64_t not_messages = 0;    // values that are not Keyward messages
  uint64_t failed = 0;          // could not be re-encrypted (left as they were)
  uint64_t conflicts = 0;       // changed by someone else meanwhile (left to them)
  std::string first_failure;
  // Data set reports keywardd refused, "key: why" (the rows were still
  // processed, and the job's checkpoint is cleared).
  std::vector<std::string> report_failures;
  // After the run: rows per key and version (the whole column).
  std::map<std::string, std::map<uint32_t, uint64_t>> rows_per_version;
  double seconds = 0;
};

// The checkpoint name of a job (data set, mode and key filter).
std::string JobName(const std::string& data_set, const JobOptions& options);

// Runs (or resumes) the job.  Errors: what the table or keywardd return for
// the job as a whole; per-row problems are counted in the report.
// `data` rewraps and re-encrypts; `admin` reads keys and reports the data
// set (the retirement gate's evidence).
absl::StatusOr<Report> RunJob(std::shared_ptr<DataClient> data, AdminClient& admin,
                              MessageTable& table, const JobOptions& options);

}  // namespace keyward::reencrypt

#endif  // KEYWARD_REENCRYPT_JOB_H_
