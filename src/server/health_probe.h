// Runs a health check that may hang (an HSM that stops answering, a store
// that is locked) on a thread of its own, one at a time, and answers
// within a bounded wait either way: /readyz and /metrics never block on
// the HSM, and a stuck HSM does not pile up threads.
#ifndef KEYWARD_SERVER_HEALTH_PROBE_H_
#define KEYWARD_SERVER_HEALTH_PROBE_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace keyward::server {

class HealthProbe {
 public:
  // `check` runs on the probe's thread; `wait` bounds how long Check()
  // waits for it.
  HealthProbe(std::function<absl::Status()> check, absl::Duration wait);
  // Waits for a check in progress (an HSM that never answers also holds up
  // closing its session, so there is nothing better to do).
  ~HealthProbe();

  // The result of a check started now, or of the one in progress if it
  // finishes within `wait`; otherwise kUnavailable saying how long the
  // check has been running.
  absl::Status Check();

 private:
  void Run();

  const std::function<absl::Status()> check_;
  const absl::Duration wait_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t requested_ = 0;  // checks asked for
  uint64_t finished_ = 0;   // checks completed
  bool running_ = false;
  absl::Time started_;
  absl::Status last_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_HEALTH_PROBE_H_
