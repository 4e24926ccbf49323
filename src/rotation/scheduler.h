// keywardd's rotation scheduler: rotates keys whose rotation period has
// passed or whose primary version is close to its data key limit, and
// destroys versions whose waiting period has ended.  Every action it takes
// (and every one that fails) is reported to `on_action`, which keywardd
// turns into an audit record.
//
// After downtime a key that missed several periods is rotated once, not
// once per missed period: the new primary's creation time restarts the
// clock.  The due check is repeated inside the rotation's transaction, so
// two schedulers sharing a store cannot both rotate.
//
// Several replicas: with a lease store, only the replica holding the
// "scheduler" lease (KeyStore::AcquireLease) runs passes.  Every replica's
// scheduler tries to take or renew it every lease_ttl / 3; the holder that
// dies stops renewing, and another replica takes over and runs a pass at
// once, within lease_ttl.  Each action carries the lease's fencing token,
// and a holder that could not renew in time stops acting before its lease
// can have passed to another.  The transactions above, not the lease, are
// what makes a rotation or destruction happen exactly once.
//
// Thread-safety: RunOnce may be called from any one thread at a time;
// Start/Stop manage a background thread that calls it.
#ifndef KEYWARD_ROTATION_SCHEDULER_H_
#define KEYWARD_ROTATION_SCHEDULER_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "kms/key_service.h"

namespace keyward::rotation {

struct SchedulerOptions {
  absl::Duration interval = absl::Seconds(30);
  // Rotate when the primary has issued this fraction of the per-version
  // data key limit (KeyServiceOptions::max_data_keys_per_version).
  double usage_fraction = 0.9;
  // Several replicas: the store holding the lease, this replica's name
  // and the lease's duration.  Null: this scheduler is the only one.
  keystore::KeyStore* lease_store = nullptr;
  std::string holder;
  absl::Duration lease_ttl = absl::Seconds(10);
};

inline constexpr char kSchedulerLease[] = "scheduler";

struct Action {
  enum class Kind { kRotate, kDestroy };
  Kind kind = Kind::kRotate;
  std::string key;          // empty only for a failed destruction run
  uint32_t from_version = 0;
  uint32_t to_version = 0;
  std::string reason;       // "rotation period 90d elapsed", ...
  absl::Status status;
  uint64_t fencing_token = 0;  // the lease it was taken under (0: no lease)
};

// Why `key` is due for rotation at `now`, or empty.
std::string RotationDue(const keystore::Key& key, absl::Time now, uint64_t usage_limit,
                        double usage_fraction);

class Scheduler {
 public:
  Scheduler(kms::KeyService* service, kms::Clock* clock, uint64_t usage_limit,
            SchedulerOptions options, std::function<void(const Action&)> on_action)
      : service_(service),
        clock_(clock),
        usage_limit_(usage_limit),
        options_(options),
        on_action_(std::move(on_action)) {}
  ~Scheduler() { Stop(); }

  // One pass over every key.  Returns the actions taken (also reported).
  // With a lease, the pass stops early when the lease is lost.
  std::vector<Action> RunOnce();
  // Takes or renews the lease (no-op without a lease store).  True while
  // this replica holds it.
  bool RenewLease();
  // The fencing token of the lease this replica holds, or 0.
  uint64_t fencing_token() const;
  // True when this scheduler may act now: it has no lease to hold, or it
  // holds the lease with its margin left.
  bool MayActNow() const { return MayAct(); }

  void Start();
  void Stop();

 private:
  kms::KeyService* const service_;
  kms::Clock* const clock_;
  const uint64_t usage_limit_;
  const SchedulerOptions options_;
  const std::function<void(const Action&)> on_action_;
  // True while the lease (if any) is ours with a safe margin left.
  bool MayAct() const;

  mutable std::mutex lease_mu_;
  uint64_t token_ = 0;             // GUARDED_BY(lease_mu_): 0 when not held
  absl::Time act_until_;           // GUARDED_BY(lease_mu_): local clock
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace keyward::rotation

#endif  // KEYWARD_ROTATION_SCHEDULER_H_
