// Time source for the KMS core, so tests can move time (destruction waiting
// periods, rotation schedules) without sleeping.
#ifndef KEYWARD_KMS_CLOCK_H_
#define KEYWARD_KMS_CLOCK_H_

#include <atomic>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace keyward::kms {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // The process's real clock.  Never null, never destroyed.
  static Clock* Real();
};

// A clock that only moves when told to.  Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'800'000'000))
      : now_us_(absl::ToUnixMicros(start)) {}
  absl::Time Now() const override { return absl::FromUnixMicros(now_us_.load()); }
  void Advance(absl::Duration d) { now_us_ += absl::ToInt64Microseconds(d); }

 private:
  std::atomic<int64_t> now_us_;
};

}  // namespace keyward::kms

#endif  // KEYWARD_KMS_CLOCK_H_
