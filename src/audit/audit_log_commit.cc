// The audit log's group commit: callers queue records, one writer thread
// writes and fdatasyncs each batch, a watcher answers callers past max_wait.
#include <algorithm>
#include <future>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "audit/audit_log.h"
#include "audit/audit_log_files.h"
#include "base/log.h"
#include "keyward/errors.h"
#include "metrics/metrics.h"

namespace keyward::audit {
namespace {

constexpr size_t kMaxBatch = 8192;
// A batch this small, with nothing queued behind it, is answered by the
// writer itself.
constexpr size_t kAnswerHereUpTo = 4;

absl::Status Unavailable(absl::string_view why) {
  return MakeError(absl::StatusCode::kUnavailable, ErrorCode::kAuditUnavailable, absl::StrCat(
      "the audit log is unavailable (", why,
      "); the request was not answered because it could not be recorded. "
      "keywardd retries by itself; see /readyz"));
}

}  // namespace

void AuditLog::Submit(AuditRecord record, std::function<void(absl::Status)> done) {
  // In parallel, off the writer.
  std::string body =
      storage_->binary_records() ? EncodeRecordBody(record) : SerializeRecordBody(record);
  std::unique_lock<std::mutex> lock(mu_);
  const absl::Time now = absl::Now();
  if ((!healthy_ && now - failing_since_ >= options_.max_wait) ||
      pending_.size() >= options_.max_pending) {
    if (refused_ == 0) refused_since_ = now;
    ++refused_;
    ++stats_.refused;
    absl::Status refusal =
        Unavailable(healthy_ ? "too many records are waiting to be written" : failure_);
    lock.unlock();
    if (done) done(std::move(refusal));
    return;
  }
  pending_.push_back({next_seq_++, std::move(record), std::move(body), std::move(done),
                      now + options_.max_wait});
  // One wake-up per batch, not per record: the writer drains the queue.
  if (writer_idle_) {
    writer_idle_ = false;
    writer_cv_.notify_one();
  }
}

absl::Status AuditLog::Append(AuditRecord record) {
  std::promise<absl::Status> promise;
  std::future<absl::Status> result = promise.get_future();
  Submit(std::move(record), [&promise](absl::Status s) { promise.set_value(std::move(s)); });
  return result.get();
}

void AuditLog::AppendAsync(AuditRecord record) { Submit(std::move(record), nullptr); }

void AuditLog::WatchLoop() {
  // Answers callers whose record is not durable by its deadline; the record
  // itself stays queued (marked "response withheld") and is written when
  // the disk takes it.
  const auto tick = absl::ToChronoMilliseconds(
      std::clamp(options_.max_wait / 8, absl::Milliseconds(5), absl::Milliseconds(100)));
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    watch_cv_.wait_for(lock, tick);
    const absl::Time now = absl::Now();
    std::vector<std::function<void(absl::Status)>> expired;
    auto scan = [&](auto& queue) {
      for (Pending& p : queue) {
        if (!p.done) continue;
        if (p.deadline > now) return false;
        expired.push_back(std::move(p.done));
        p.done = nullptr;
        p.withheld = true;
      }
      return true;
    };
    if (scan(inflight_)) scan(pending_);
    if (expired.empty()) continue;
    const absl::Status status = Unavailable(
        failure_.empty() ? "the disk did not confirm the write in time" : failure_);
    lock.unlock();
    for (auto& done : expired) done(status);
    lock.lock();
  }
}

absl::Status AuditLog::Health() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (healthy_) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(
      "audit log not writable since ", IsoTime(failing_since_), ": ", failure_));
}

AuditLog::Stats AuditLog::GetStats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.pending = pending_.size();
  return s;
}

void AuditLog::WriterLoop() {
  std::vector<Hash> leaves;
  std::vector<std::string> lines;
  std::vector<bool> withheld;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (pending_.empty() && !stopping_) {
        writer_idle_ = true;
        // Woken at least every second to close a segment that is old enough.
        writer_cv_.wait_for(lock, std::chrono::seconds(1),
                            [&] { return !pending_.empty() || stopping_; });
      }
      writer_idle_ = false;
      if (pending_.empty() && stopping_) return;  // nothing left
      if (pending_.empty()) {
        lock.unlock();
        MaybeCloseSegment();
        continue;
      }
      while (!pending_.empty() && inflight_.size() < kMaxBatch) {
        inflight_.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
    }
    // Only this thread touches the records of inflight_; the watcher only
    // flips `withheld` and takes `done`, under mu_.
    Hash prev = prev_;
    absl::Duration backoff = absl::Milliseconds(50);
    const uint64_t first = inflight_.front().seq;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        withheld.clear();
        for (const Pending& p : inflight_) withheld.push_back(p.withheld);
      }
      // Serialize (again, on a retry: a record may have been marked since).
      leaves.clear();
      lines.clear();
      prev = prev_;
      for (size_t i = 0; i < inflight_.size(); ++i) {
        const Pending& p = inflight_[i];
        std::string line;
        const bool binary = storage_->binary_records();
        if (withheld[i]) {
          AuditRecord marked = p.record;
          marked.detail = absl::StrCat("response withheld: audit log unavailable. ",
                                       marked.detail);
          marked.result = "UNAVAILABLE";
          line = binary ? ChainBinaryRecord(EncodeRecordBody(marked), p.seq, prev)
                        : SerializeRecord(marked, p.seq, prev);
        } else {
          line = binary ? ChainBinaryRecord(p.body, p.seq, prev)
                        : ChainRecord(p.body, p.seq, prev);
        }
        prev = LeafHash(line);
        leaves.push_back(prev);
        lines.push_back(std::move(line));
      }
      const absl::Time t0 = absl::Now();
      bool stored_earlier = false;
      absl::Status s = storage_->AppendRecords(first, &lines, &stored_earlier);
      if (s.ok()) {
        if (stored_earlier) {
          // An earlier attempt whose outcome was unknown did land: the tree
          // takes the lines stored then.
          for (size_t i = 0; i < lines.size(); ++i) leaves[i] = LeafHash(lines[i]);
          prev = leaves.back();
        }
        const absl::Duration took = absl::Now() - t0;
        static auto& fsync = metrics::Global()
                                 .HistogramFamily("keyward_audit_fsync_duration_seconds",
                                                  "Writing one group commit of audit records "
                                                  "and its fdatasync.")
                                 .With({});
        static auto& batch_size =
            metrics::Global()
                .HistogramFamily("keyward_audit_batch_records",
                                 "Audit records per group commit (one fdatasync).", {},
                                 {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096})
                .With({});
        static auto& records = metrics::Global()
                                   .CounterFamily("keyward_audit_records_total",
                                                  "Audit records made durable.")
                                   .With({});
        if (!memory()) fsync.ObserveDuration(took);
        batch_size.Observe(static_cast<double>(lines.size()));
        records.Inc(lines.size());
        std::lock_guard<std::mutex> lock(mu_);
        stats_.last_fsync_ms = absl::ToDoubleMilliseconds(took);
        break;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (healthy_) {
          healthy_ = false;
          failing_since_ = absl::Now();
        }
        failure_ = std::string(s.message());
        if (stopping_ && absl::Now() - failing_since_ > options_.max_wait) {
          Log(LogLevel::kError, "audit",
              "records could not be written before shutdown; their requests were not answered",
              {{"records", absl::StrCat(inflight_.size() + pending_.size())},
               {"error", failure_}});
          FailAllLocked(Unavailable(failure_));
          return;
        }
      }
      std::this_thread::sleep_for(absl::ToChronoMilliseconds(backoff));
      backoff = std::min(backoff * 2, absl::Seconds(1));
    }
    for (const Hash& leaf : leaves) tree_.Append(leaf);
    prev_ = prev;
    std::vector<std::function<void(absl::Status)>> answered;
    bool nothing_waits = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.records += inflight_.size();
      for (Pending& p : inflight_) {
        if (p.done) answered.push_back(std::move(p.done));
      }
      inflight_.clear();
      healthy_ = true;
      failure_.clear();
      ++stats_.batches;
      if (refused_ > 0) {
        AuditRecord gap;
        gap.time = absl::Now();
        gap.operation = "audit-unavailable";
        gap.decision = "none";
        gap.result = "UNAVAILABLE";
        gap.detail = absl::StrCat(refused_, " request(s) were refused without an answer "
                                            "because the audit log was unavailable from ",
                                  IsoTime(refused_since_), " to ", IsoTime(gap.time));
        std::string body = storage_->binary_records() ? EncodeRecordBody(gap)
                                                      : SerializeRecordBody(gap);
        pending_.push_back({next_seq_++, std::move(gap), std::move(body), nullptr,
                            absl::InfiniteFuture()});
        refused_ = 0;
      }
      nothing_waits = pending_.empty();
    }
    if (nothing_waits && answered.size() <= kAnswerHereUpTo) {
      // A light load: answering here spares the hand-off (a thread
      // wake-up costs as much as the write on an idle machine).
      for (auto& done : answered) std::exchange(done, nullptr)(absl::OkStatus());
    } else if (!answered.empty()) {
      // Answered on another thread, so the next batch's write starts now.
      std::lock_guard<std::mutex> lock(completion_mu_);
      completions_.push_back(std::move(answered));
      completion_cv_.notify_one();
    }
    MaybeCloseSegment();
  }
}

void AuditLog::CompletionLoop() {
  std::unique_lock<std::mutex> lock(completion_mu_);
  for (;;) {
    completion_cv_.wait(lock, [&] { return !completions_.empty() || completion_stop_; });
    if (completions_.empty()) return;
    auto batch = std::move(completions_.front());
    completions_.pop_front();
    lock.unlock();
    // Each callback goes as soon as it has run: what it holds (a call's
    // state) is freed without waiting for the rest of the batch.
    for (auto& done : batch) std::exchange(done, nullptr)(absl::OkStatus());
    lock.lock();
  }
}

void AuditLog::FailAllLocked(const absl::Status& status) {
  // Called with mu_ held only at shutdown, when nothing else waits on it.
  for (auto* queue : {&inflight_}) {
    for (Pending& p : *queue) {
      if (p.done) std::exchange(p.done, nullptr)(status);
    }
  }
  for (Pending& p : pending_) {
    if (p.done) std::exchange(p.done, nullptr)(status);
  }
}

}  // namespace keyward::audit
