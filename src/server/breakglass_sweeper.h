// Ends break-glass grants on time: a thread that, every `interval`, closes
// the grants that expired, were used up or lapsed unapproved, each after
// the audit record of its end is durable (AccessControl::SweepBreakGlass).
// A grant stops applying at its expiry instant whether or not this ran;
// the sweep makes the end a record and takes it off /metrics.  While it
// runs, /metrics has the gauge keyward_breakglass_grants_active.
//
// Thread-safety: Start and Stop from one thread.
#ifndef KEYWARD_SERVER_BREAKGLASS_SWEEPER_H_
#define KEYWARD_SERVER_BREAKGLASS_SWEEPER_H_

#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/time/time.h"
#include "audit/audit_log.h"
#include "server/access_control.h"

namespace keyward::server {

class BreakGlassSweeper {
 public:
  BreakGlassSweeper(AccessControl* access, audit::AuditLog* audit, absl::Duration interval)
      : access_(access), audit_(audit), interval_(interval) {}
  ~BreakGlassSweeper() { Stop(); }

  void Start();
  void Stop();
  // One sweep, on the caller's thread.
  absl::Status SweepOnce();

 private:
  AccessControl* const access_;
  audit::AuditLog* const audit_;
  const absl::Duration interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_BREAKGLASS_SWEEPER_H_
