// Usage counters of key versions: batched decrypt counts and their flushing,
// durable reservations of encryptions under a KEK (kms/usage_recorder.h).
#include "kms/usage_recorder.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "metrics/metrics.h"

namespace keyward::kms {
namespace {
// A crash over-counts a version by at most this much per keywardd.
constexpr uint64_t kMaxBlock = 1024;
}  // namespace

UsageRecorder::UsageRecorder(std::shared_ptr<keystore::KeyStore> store, Clock* clock,
                             uint64_t max_wraps_per_version, absl::Duration flush_interval)
    : store_(std::move(store)),
      clock_(clock),
      max_wraps_per_version_(max_wraps_per_version),
      flush_interval_(flush_interval) {
  if (flush_interval_ > absl::ZeroDuration()) {
    flusher_ = std::thread([this] { FlushLoop(); });
  }
}

UsageRecorder::~UsageRecorder() {
  {
    std::lock_guard<std::mutex> lock(flush_mu_);
    stopping_ = true;
  }
  flush_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  if (absl::Status s = Flush(); !s.ok()) {
    Log(LogLevel::kError, "usage", "could not write usage counters",
        {{"error", std::string(s.message())}});
  }
  ReleaseReservations();
}

void UsageRecorder::ReleaseReservations() {
  std::lock_guard<std::mutex> lock(reserve_mu_);
  for (auto& [id, r] : reservations_) {
    std::lock_guard<std::mutex> entry(r->mu);
    if (r->unused == 0) continue;
    if (store_->AddDataKeysIssued(id.first, id.second, -static_cast<int64_t>(r->unused), 0)
            .ok()) {
      r->unused = 0;
    }
  }
}

absl::Status UsageRecorder::Reserve(const std::string& name, uint32_t version, uint64_t n) {
  Reservation* r;
  {
    std::lock_guard<std::mutex> lock(reserve_mu_);
    auto& slot = reservations_[{name, version}];
    if (slot == nullptr) slot = std::make_unique<Reservation>();
    r = slot.get();
  }
  std::lock_guard<std::mutex> lock(r->mu);
  if (r->unused < n) {
    // Reserve before wrapping, durably: after a crash the stored count is
    // at least what was used.  Blocks grow while the version is busy, so
    // a busy version writes to the store a few times a second at most.
    const absl::Time now = clock_->Now();
    r->block = now - r->last < absl::Seconds(1) ? std::min<uint64_t>(r->block * 2, kMaxBlock) : 64;
    r->last = now;
    const uint64_t need = n - r->unused;
    uint64_t take = std::max(need, r->block);
    auto total = store_->AddDataKeysIssued(name, version, static_cast<int64_t>(take),
                                           max_wraps_per_version_);
    if (absl::IsResourceExhausted(total.status()) && take > need) {
      take = need;  // the last few below the limit
      total = store_->AddDataKeysIssued(name, version, static_cast<int64_t>(take),
                                        max_wraps_per_version_);
    }
    if (absl::IsResourceExhausted(total.status())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "key ", name, " version ", version, " has issued its limit of ",
          max_wraps_per_version_,
          " data keys (docs/decisions/0003); rotate the key: `keyward key rotate ", name, "`"));
    }
    KW_RETURN_IF_ERROR(total.status());
    r->unused += take;
  }
  r->unused -= n;
  return absl::OkStatus();
}

void UsageRecorder::FlushLoop() {
  std::unique_lock<std::mutex> lock(flush_mu_);
  while (!stopping_) {
    flush_cv_.wait_for(lock, absl::ToChronoMilliseconds(flush_interval_));
    if (stopping_) break;
    lock.unlock();
    (void)Flush();  // kept in memory and retried on failure
    lock.lock();
  }
}

absl::Status UsageRecorder::Flush() {
  absl::flat_hash_map<VersionId, Usage> batch;
  {
    std::lock_guard<std::mutex> lock(usage_mu_);
    batch.swap(pending_usage_);
  }
  if (batch.empty()) return absl::OkStatus();
  std::vector<keystore::UsageDelta> deltas;
  deltas.reserve(batch.size());
  for (const auto& [id, u] : batch) {
    // Data key counts are not here: they are reserved durably as they go.
    deltas.push_back({id.first, id.second, 0, u.decrypts, u.last_used, u.last_decrypt});
  }
  absl::Status s = store_->AddUsage(deltas);
  if (!s.ok()) {
    // Put the counts back so the next flush writes them.
    std::lock_guard<std::mutex> lock(usage_mu_);
    for (const auto& [id, u] : batch) {
      Usage& p = pending_usage_[id];
      p.decrypts += u.decrypts;
      p.last_used = std::max(p.last_used, u.last_used);
      p.last_decrypt = std::max(p.last_decrypt, u.last_decrypt);
    }
  }
  return s;
}

void UsageRecorder::Record(const std::string& name, uint32_t version, uint64_t decrypts,
                           bool reader) {
  static auto& decrypts_total = metrics::Global().CounterFamily(
      "keyward_data_key_decrypts_total",
      "Data keys unwrapped per key version (keys outside metrics.key_labels count as "
      "\"other\").",
      {"key", "version"});
  const std::string label = metrics::KeyLabel(name);
  const metrics::LabelValues labels{label,
                                    label == "other" ? "" : absl::StrCat(version)};
  if (decrypts > 0) decrypts_total.With(labels).Inc(decrypts);
  const absl::Time now = clock_->Now();
  std::lock_guard<std::mutex> lock(usage_mu_);
  Usage& u = pending_usage_[{name, version}];
  u.decrypts += decrypts;
  u.last_used = std::max(u.last_used, now);
  if (decrypts > 0 && reader) u.last_decrypt = std::max(u.last_decrypt, now);
}

void UsageRecorder::ShowUnflushed(keystore::Key& key) {
  {
    // The stored data key counts include this process's unused
    // reservations; what callers see is what was used.
    std::lock_guard<std::mutex> lock(reserve_mu_);
    for (keystore::KeyVersion& v : key.versions) {
      auto it = reservations_.find({key.name, v.version});
      if (it == reservations_.end()) continue;
      std::lock_guard<std::mutex> entry(it->second->mu);
      v.usage.data_keys_issued -= std::min(v.usage.data_keys_issued, it->second->unused);
    }
  }
  std::lock_guard<std::mutex> lock(usage_mu_);
  for (keystore::KeyVersion& v : key.versions) {
    auto it = pending_usage_.find({key.name, v.version});
    if (it != pending_usage_.end()) {
      v.usage.decrypts += it->second.decrypts;
      if (!v.usage.last_used || *v.usage.last_used < it->second.last_used) {
        v.usage.last_used = it->second.last_used;
      }
      if (it->second.last_decrypt != absl::InfinitePast() &&
          (!v.usage.last_decrypt || *v.usage.last_decrypt < it->second.last_decrypt)) {
        v.usage.last_decrypt = it->second.last_decrypt;
      }
    }
  }
}

}  // namespace keyward::kms
