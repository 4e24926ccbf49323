// Audit records for requests refused before they were read: over a size or
// count limit, over the caller's share of keywardd, not a valid request, an
// unknown method, a failed TLS handshake.  Each is recorded, but a flood of
// them must not flood the log: per source (a principal, or "tls-handshake"
// for connections that never had one), the first `burst` refusals of each
// window get a record of their own; the rest are counted, and one summary
// record per source and window says how many there were and why.
//
// Thread-safety: every method is safe to call concurrently.
#ifndef KEYWARD_SERVER_REFUSAL_AUDIT_H_
#define KEYWARD_SERVER_REFUSAL_AUDIT_H_

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "audit/audit_log.h"

namespace keyward::server {

struct RefusalAuditOptions {
  int burst = 20;                          // full records per source and window
  absl::Duration window = absl::Seconds(10);
  size_t max_sources = 10000;              // beyond: counted under "other"
};

class RefusalAudit {
 public:
  RefusalAudit(audit::AuditLog* log, RefusalAuditOptions options);
  // Writes the summaries still pending.
  ~RefusalAudit();

  // True: the caller writes a record of its own for this refusal.  False:
  // it was counted (under `reason`, a short fixed string such as
  // "limit-exceeded") for `source`'s summary record.
  bool ShouldRecord(const std::string& source, absl::string_view reason);

  // Writes the summary records of every window that has ended (the
  // background thread calls it; tests may too).
  void FlushDue(absl::Time now);

  uint64_t summarized() const;

 private:
  struct Window {
    absl::Time start;
    int recorded = 0;
    uint64_t suppressed = 0;
    std::map<std::string, uint64_t> reasons;
  };
  void Loop();

  audit::AuditLog* const log_;
  const RefusalAuditOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  absl::flat_hash_map<std::string, Window> windows_;  // GUARDED_BY(mu_)
  uint64_t summarized_ = 0;                           // GUARDED_BY(mu_)
  bool stopping_ = false;                             // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_REFUSAL_AUDIT_H_
