#include "server/tarpit.h"

#include <algorithm>
#include <vector>

namespace keyward::server {

Tarpit::Tarpit(TarpitOptions options) : options_(options) {
  thread_ = std::thread([this] { Loop(); });
}

Tarpit::~Tarpit() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  thread_.join();
}

absl::Duration Tarpit::Delay(const std::string& principal) {
  const absl::Time now = absl::Now();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = windows_.find(principal);
  if (it == windows_.end()) {
    if (windows_.size() >= options_.max_principals) {
      // Forget windows that have ended; if none has, forget one at random
      // (an attacker with many identities gets no further by it).
      for (auto w = windows_.begin(); w != windows_.end();) {
        if (now - w->second.start >= options_.window) {
          windows_.erase(w++);
        } else {
          ++w;
        }
      }
      if (windows_.size() >= options_.max_principals) windows_.erase(windows_.begin());
    }
    it = windows_.try_emplace(principal, Window{now, 0}).first;
  }
  Window& w = it->second;
  if (now - w.start >= options_.window) w = Window{now, 0};
  const int beyond = ++w.refusals - options_.free_per_window;
  if (beyond <= 0) return absl::ZeroDuration();
  return std::min(options_.max_delay, options_.step * beyond);
}

void Tarpit::Hold(absl::Duration delay, std::function<void()> answer) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_ && delay > absl::ZeroDuration() && held_.size() < options_.max_held) {
      held_.emplace(absl::Now() + delay, std::move(answer));
      cv_.notify_all();
      return;
    }
  }
  answer();
}

size_t Tarpit::held() const {
  std::lock_guard<std::mutex> lock(mu_);
  return held_.size();
}

void Tarpit::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    std::vector<std::function<void()>> due;
    const absl::Time now = absl::Now();
    while (!held_.empty() && (stopping_ || held_.begin()->first <= now)) {
      due.push_back(std::move(held_.begin()->second));
      held_.erase(held_.begin());
    }
    if (!due.empty()) {
      lock.unlock();
      for (auto& answer : due) answer();
      lock.lock();
      continue;
    }
    if (stopping_) return;
    if (held_.empty()) {
      cv_.wait(lock);
    } else {
      cv_.wait_for(lock, absl::ToChronoNanoseconds(held_.begin()->first - now));
    }
  }
}

}  // namespace keyward::server
