#include "server/refusal_audit.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/log.h"
#include "metrics/metrics.h"

namespace keyward::server {
namespace {
constexpr char kOtherSources[] = "(other sources)";

std::string IsoTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}
}  // namespace

RefusalAudit::RefusalAudit(audit::AuditLog* log, RefusalAuditOptions options)
    : log_(log), options_(options) {
  thread_ = std::thread([this] { Loop(); });
}

RefusalAudit::~RefusalAudit() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  thread_.join();
  FlushDue(absl::InfiniteFuture());
}

bool RefusalAudit::ShouldRecord(const std::string& source, absl::string_view reason) {
  static auto& refused = metrics::Global().CounterFamily(
      "keyward_requests_refused_before_reading_total",
      "Requests refused before they were read (limits, the caller's share, invalid "
      "requests, unknown methods, failed TLS handshakes), by reason.",
      {"reason"});
  refused.With({std::string(reason)}).Inc();
  const absl::Time now = absl::Now();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = windows_.find(source);
  if (it == windows_.end()) {
    const std::string& key =
        windows_.size() >= options_.max_sources ? std::string(kOtherSources) : source;
    it = windows_.try_emplace(key, Window{now}).first;
  }
  Window& w = it->second;
  if (w.recorded < options_.burst) {
    ++w.recorded;
    return true;
  }
  ++w.suppressed;
  ++w.reasons[std::string(reason)];
  return false;
}

void RefusalAudit::FlushDue(absl::Time now) {
  std::vector<audit::AuditRecord> records;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = windows_.begin(); it != windows_.end();) {
      Window& w = it->second;
      if (now - w.start < options_.window) {
        ++it;
        continue;
      }
      if (w.suppressed > 0) {
        std::vector<std::string> reasons;
        for (const auto& [r, n] : w.reasons) reasons.push_back(absl::StrCat(r, ": ", n));
        audit::AuditRecord r;
        r.time = std::min(now, absl::Now());
        r.request_id = "refusal-summary";
        r.principal = it->first;
        r.operation = "refused-before-reading";
        r.decision = "none";
        r.result = "RESOURCE_EXHAUSTED";
        r.detail = absl::StrCat(w.suppressed, " more refusal(s) from ", IsoTime(w.start),
                                " to ", IsoTime(r.time), " beyond the ", options_.burst,
                                " recorded one by one (", absl::StrJoin(reasons, ", "), ")");
        summarized_ += w.suppressed;
        records.push_back(std::move(r));
      }
      windows_.erase(it++);
    }
  }
  for (audit::AuditRecord& r : records) log_->AppendAsync(std::move(r));
}

uint64_t RefusalAudit::summarized() const {
  std::lock_guard<std::mutex> lock(mu_);
  return summarized_;
}

void RefusalAudit::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, absl::ToChronoMilliseconds(std::min(options_.window, absl::Seconds(1))));
    if (stopping_) break;
    lock.unlock();
    FlushDue(absl::Now());
    lock.lock();
  }
}

}  // namespace keyward::server
