#include "server/health_probe.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace keyward::server {

HealthProbe::HealthProbe(std::function<absl::Status()> check, absl::Duration wait)
    : check_(std::move(check)), wait_(wait), thread_([this] { Run(); }) {}

HealthProbe::~HealthProbe() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

absl::Status HealthProbe::Check() {
  std::unique_lock<std::mutex> lock(mu_);
  // A check already running counts as this one: its answer is as fresh as
  // any we could start.
  if (!running_) {
    ++requested_;
    running_ = true;
    started_ = absl::Now();
    cv_.notify_all();
  }
  const uint64_t want = requested_;
  const bool done = cv_.wait_for(lock, absl::ToChronoMilliseconds(wait_),
                                 [&] { return finished_ >= want; });
  if (done) return last_;
  return absl::UnavailableError(absl::StrFormat(
      "no answer to a health check for %.1f s (an HSM or key store that stopped responding)",
      absl::ToDoubleSeconds(absl::Now() - started_)));
}

void HealthProbe::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || finished_ < requested_; });
    if (stop_) return;
    const uint64_t doing = requested_;
    lock.unlock();
    absl::Status result = check_();
    lock.lock();
    last_ = std::move(result);
    finished_ = doing;
    running_ = false;
    cv_.notify_all();
  }
}

}  // namespace keyward::server
