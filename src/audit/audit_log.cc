#include "audit/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <utility>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "crypto/signature.h"
#include "keyward/errors.h"
#include "metrics/metrics.h"
#include "nlohmann/json.hpp"

namespace keyward::audit {
namespace {

constexpr size_t kMaxBatch = 8192;

std::string Path(const std::string& dir, const char* file) {
  return absl::StrCat(dir, "/", file);
}

std::string IsoTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

absl::Status Tampered(absl::string_view why) {
  return absl::DataLossError(absl::StrCat(
      "the audit log is not the one keywardd wrote: ", why,
      ". keywardd refuses to start on it rather than sign it. Investigate with "
      "`keyward audit verify --log DIR --checkpoint-key-fingerprint FP` and restore the log "
      "from a backup; or, to start a new log deliberately, move the directory aside (it is "
      "evidence) and start keywardd once with --new-audit-log (recorded in the new log); "
      "see docs/audit.md"));
}

absl::Status Unavailable(absl::string_view why) {
  return MakeError(absl::StatusCode::kUnavailable, ErrorCode::kAuditUnavailable, absl::StrCat(
      "the audit log is unavailable (", why,
      "); the request was not answered because it could not be recorded. "
      "keywardd retries by itself; see /readyz"));
}

}  // namespace

std::string CheckpointMessage(absl::string_view environment, uint64_t tree_size,
                              const Hash& root, absl::Time time) {
  return absl::StrCat("keyward audit checkpoint v1\n", environment, "\n", tree_size,
                      "\n", ToHex(root), "\n", absl::ToUnixMicros(time), "\n");
}

absl::StatusOr<Checkpoint> ParseCheckpoint(absl::string_view line) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  Checkpoint c;
  std::string root, sig;
  if (!j.is_object() || !j.contains("tree_size") || !j.contains("root") ||
      !j.contains("time_unix_micros") || !j.contains("signature") ||
      !j.contains("environment") || !j.contains("key_fingerprint")) {
    return absl::DataLossError("not a checkpoint record");
  }
  try {
    c.environment = j["environment"].get<std::string>();
    c.tree_size = j["tree_size"].get<uint64_t>();
    root = j["root"].get<std::string>();
    c.time = absl::FromUnixMicros(j["time_unix_micros"].get<int64_t>());
    c.key_fingerprint = j["key_fingerprint"].get<std::string>();
    sig = j["signature"].get<std::string>();
  } catch (const nlohmann::json::exception&) {
    return absl::DataLossError("a checkpoint field has the wrong type");
  }
  if (!FromHex(root, &c.root) || !absl::Base64Unescape(sig, &c.signature)) {
    return absl::DataLossError("a checkpoint has a malformed root or signature");
  }
  c.line = std::string(line);
  return c;
}

bool RecordFilter::Matches(absl::string_view line) const {
  if (!since && !until && principal.empty() && key.empty() && operation.empty() &&
      decision.empty() && context.empty()) {
    return true;
  }
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (!j.is_object()) return false;
  auto field = [&](const char* name) {
    return j.contains(name) && j[name].is_string() ? j[name].get<std::string>()
                                                   : std::string();
  };
  if (!principal.empty() && field("principal") != principal) return false;
  if (!key.empty() && field("key") != key) return false;
  if (!operation.empty() && field("operation") != operation) return false;
  if (!decision.empty() && field("decision") != decision) return false;
  if (!context.empty()) {
    if (!j.contains("context") || !j["context"].is_object()) return false;
    const auto& ctx = j["context"];
    for (const auto& [k, v] : context) {
      if (!ctx.contains(k) || !ctx[k].is_string() || ctx[k].get<std::string>() != v) {
        return false;
      }
    }
  }
  if (since || until) {
    absl::Time t;
    std::string err;
    if (!absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", field("time"), &t, &err)) return false;
    if (since && t < *since) return false;
    if (until && t >= *until) return false;
  }
  return true;
}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(AuditLogOptions options) {
  std::unique_ptr<AuditLog> log(new AuditLog(std::move(options)));
  if (absl::Status s = log->Load(); !s.ok()) {
    // A log that did not load is left exactly as it was: no final
    // checkpoint over what was read of it.
    log->opened_ = false;
    return s;
  }
  log->writer_ = std::thread([l = log.get()] { l->WriterLoop(); });
  log->watcher_ = std::thread([l = log.get()] { l->WatchLoop(); });
  log->completer_ = std::thread([l = log.get()] { l->CompletionLoop(); });
  if (log->options_.signer != nullptr &&
      log->options_.checkpoint_interval > absl::ZeroDuration()) {
    log->checkpointer_ = std::thread([l = log.get()] { l->CheckpointLoop(); });
  }
  return log;
}

absl::Status AuditLog::Load() {
  if (options_.signer != nullptr) {
    KW_ASSIGN_OR_RETURN(public_key_pem_,
                        options_.signer->GetOrCreateSigningKey(options_.signing_key_label));
    KW_ASSIGN_OR_RETURN(key_fingerprint_, crypto::PublicKeyFingerprint(public_key_pem_));
  }
  if (memory()) return absl::OkStatus();
  if (::mkdir(options_.dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::UnavailableError(absl::StrCat("cannot create the audit directory ",
                                               options_.dir, ": ", std::strerror(errno)));
  }
  // Records written before: rebuild the tree and the offsets.
  const std::string records = Path(options_.dir, kRecordsFile);
  auto read = ReadWholeFile(records);
  if (!read.ok() && read.status().code() != absl::StatusCode::kNotFound) return read.status();
  if (read.ok()) {
    const std::string& content = *read;
    size_t pos = 0;
    while (pos < content.size()) {
      const size_t nl = content.find('\n', pos);
      if (nl == std::string::npos) {
        // A record torn by a crash was never acknowledged: drop the tail.
        Log(LogLevel::kWarning, "audit",
            "dropping an incomplete last record (interrupted write)",
            {{"bytes", absl::StrCat(content.size() - pos)}});
        if (::truncate(records.c_str(), static_cast<off_t>(pos)) != 0) {
          return absl::UnavailableError(absl::StrCat("cannot repair ", records, ": ",
                                                     std::strerror(errno)));
        }
        break;
      }
      absl::string_view l(content.data() + pos, nl - pos);
      // The chain first: a record that does not follow the one before it
      // means the file was edited.
      const uint64_t index = tree_.size();
      auto chain = ReadChainFields(l);
      if (!chain.ok() || chain->seq != index || chain->prev != prev_) {
        return Tampered(absl::StrCat(
            "record ", index,
            !chain.ok()              ? " is not a valid audit record"
            : chain->seq != index    ? absl::StrCat(" carries sequence number ", chain->seq,
                                                    ": records were removed, inserted or reordered")
                                     : absl::StrCat(" does not chain to record ", index - 1,
                                                    ": a record was modified, inserted or removed")));
      }
      offsets_.push_back(pos);
      prev_ = LeafHash(l);
      tree_.Append(prev_);
      pos = nl + 1;
    }
  }
  next_seq_ = tree_.size();
  KW_RETURN_IF_ERROR(CheckHistory());
  // Publish the signing key for verifiers (kept: old keys verify old
  // checkpoints).
  if (!public_key_pem_.empty()) {
    const std::string keys = Path(options_.dir, kKeysFile);
    std::ifstream kin(keys);
    std::string existing((std::istreambuf_iterator<char>(kin)), {});
    if (existing.find(public_key_pem_) == std::string::npos) {
      KW_RETURN_IF_ERROR(WriteDurably(kKeysFile, public_key_pem_));
    }
  }
  return absl::OkStatus();
}

absl::Status AuditLog::CheckHistory() {
  // Every checkpoint's root must be the root of the records it covers.
  // Only the latest needs its signature checked: it covers every earlier
  // checkpoint's records, whose roots then follow from the same leaves.
  auto content = ReadWholeFile(Path(options_.dir, kCheckpointsFile));
  if (!content.ok() && content.status().code() != absl::StatusCode::kNotFound) {
    return content.status();
  }
  std::optional<Checkpoint> last;
  if (content.ok()) {
    size_t pos = 0;
    int n = 0;
    while (pos < content->size()) {
      const size_t nl = content->find('\n', pos);
      if (nl == std::string::npos) break;  // a line torn by a crash: never used
      const absl::string_view line(content->data() + pos, nl - pos);
      pos = nl + 1;
      if (line.empty()) continue;
      ++n;
      auto c = ParseCheckpoint(line);
      if (!c.ok()) return Tampered(absl::StrCat("checkpoint ", n, " is malformed"));
      if (c->tree_size > tree_.size()) {
        return Tampered(absl::StrCat("checkpoint ", n, " covers ", c->tree_size,
                                     " records but the log holds ", tree_.size(),
                                     ": records were removed"));
      }
      KW_ASSIGN_OR_RETURN(Hash root, tree_.Root(c->tree_size));
      if (root != c->root) {
        return Tampered(absl::StrCat("records 0..", c->tree_size, " no longer match checkpoint ",
                                     n, ": a record in that range was changed"));
      }
      last = std::move(*c);
    }
  }
  if (last && options_.signer != nullptr) {
    if (last->key_fingerprint != key_fingerprint_ ||
        !crypto::VerifyEcdsaP256(public_key_pem_,
                                 CheckpointMessage(last->environment, last->tree_size,
                                                   last->root, last->time),
                                 last->signature)
             .ok()) {
      return Tampered(absl::StrCat(
          "the latest checkpoint (", last->tree_size,
          " records) is not signed by this keywardd's HSM key ", key_fingerprint_.substr(0, 16),
          ": the checkpoints were re-signed or replaced"));
    }
  }
  if (options_.anchor != nullptr) {
    KW_ASSIGN_OR_RETURN(std::optional<CheckpointAnchor::Anchor> anchor, options_.anchor->Load());
    if (anchor && tree_.size() == 0 && anchor->tree_size > 0 && options_.allow_new_log) {
      Log(LogLevel::kWarning, "audit",
          "starting a NEW audit log on request (--new-audit-log); the previous one is not in "
          "the audit directory",
          {{"previous_records", absl::StrCat(anchor->tree_size)},
           {"previous_root", ToHex(anchor->root)}});
      replaced_anchor_ = *anchor;
      KW_RETURN_IF_ERROR(options_.anchor->Store({0, EmptyRoot()}));
    } else if (anchor) {
      if (anchor->tree_size > tree_.size()) {
        return Tampered(absl::StrCat("keywardd sealed a checkpoint of ", anchor->tree_size,
                                     " records, but the log holds ", tree_.size(),
                                     ": records were removed"));
      }
      KW_ASSIGN_OR_RETURN(Hash root, tree_.Root(anchor->tree_size));
      if (root != anchor->root) {
        return Tampered(absl::StrCat("records 0..", anchor->tree_size,
                                     " are not the ones keywardd sealed: the log was rewritten"));
      }
    } else if (tree_.size() > 0) {
      if (!options_.adopt_log) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the key store holds no sealed checkpoint for the audit log in ", options_.dir,
            ", which holds ", tree_.size(),
            " records. Either the anchor was removed from the key store, and the log may have "
            "been cut back to an earlier checkpoint, or the log was written before keywardd "
            "anchored its logs, or the key store was restored without it. keywardd refuses to sign "
            "it. Check it with `keyward audit verify --log DIR --checkpoint-key-fingerprint "
            "FP` against a checkpoint you saved; if it is the log you expect, start keywardd "
            "once with --adopt-audit-log (recorded in the log); see docs/audit.md"));
      }
      Log(LogLevel::kWarning, "audit",
          "adopting an audit log the key store holds no anchor for (--adopt-audit-log); it "
          "was checked against its own signed checkpoints only",
          {{"records", absl::StrCat(tree_.size())}});
      KW_ASSIGN_OR_RETURN(Hash root, tree_.Root(tree_.size()));
      KW_RETURN_IF_ERROR(options_.anchor->Store({tree_.size(), root}));
      adopted_records_ = tree_.size();
    } else {
      KW_RETURN_IF_ERROR(options_.anchor->Store({0, EmptyRoot()}));
    }
  }
  if (last) latest_ = std::move(*last);
  return absl::OkStatus();
}

absl::Status AuditLog::WriteDurably(const std::string& file, const std::string& bytes,
                                    uint64_t* offset) {
  const std::string path = Path(options_.dir, file.c_str());
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("open ", path, ": ", std::strerror(errno)));
  struct stat st;
  const off_t start = ::fstat(fd, &st) == 0 ? st.st_size : -1;
  if (offset != nullptr) *offset = start < 0 ? 0 : static_cast<uint64_t>(start);
  size_t done = 0;
  int err = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (err == 0 && ::fdatasync(fd) != 0) err = errno;
  if (err != 0 && start >= 0) {
    // Leave no partial record behind; the same bytes are written again.
    [[maybe_unused]] int rc = ::ftruncate(fd, start);
  }
  ::close(fd);
  if (err != 0) {
    return absl::UnavailableError(absl::StrCat("writing ", path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

void AuditLog::Submit(AuditRecord record, std::function<void(absl::Status)> done) {
  std::string body = SerializeRecordBody(record);  // in parallel, off the writer
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
        writer_cv_.wait(lock, [&] { return !pending_.empty() || stopping_; });
      }
      writer_idle_ = false;
      if (pending_.empty()) return;  // stopping, nothing left
      while (!pending_.empty() && inflight_.size() < kMaxBatch) {
        inflight_.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
    }
    // Only this thread touches the records of inflight_; the watcher only
    // flips `withheld` and takes `done`, under mu_.
    Hash prev = prev_;
    absl::Duration backoff = absl::Milliseconds(50);
    uint64_t start = 0;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        withheld.clear();
        for (const Pending& p : inflight_) withheld.push_back(p.withheld);
      }
      // Serialize (again, on a retry: a record may have been marked since).
      std::string bytes;
      leaves.clear();
      lines.clear();
      prev = prev_;
      for (size_t i = 0; i < inflight_.size(); ++i) {
        const Pending& p = inflight_[i];
        std::string line;
        if (withheld[i]) {
          AuditRecord marked = p.record;
          marked.detail = absl::StrCat("response withheld: audit log unavailable. ",
                                       marked.detail);
          marked.result = "UNAVAILABLE";
          line = SerializeRecord(marked, p.seq, prev);
        } else {
          line = ChainRecord(p.body, p.seq, prev);
        }
        prev = LeafHash(line);
        leaves.push_back(prev);
        bytes.append(line);
        bytes.push_back('\n');
        lines.push_back(std::move(line));
      }
      const absl::Time t0 = absl::Now();
      absl::Status s = memory() ? absl::OkStatus() : WriteDurably(kRecordsFile, bytes, &start);
      if (s.ok()) {
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
    {
      std::lock_guard<std::mutex> lock(lines_mu_);
      uint64_t offset = start;
      for (std::string& line : lines) {
        offsets_.push_back(offset);
        offset += line.size() + 1;
        if (memory()) memory_lines_.push_back(std::move(line));
      }
    }
    for (const Hash& leaf : leaves) tree_.Append(leaf);
    prev_ = prev;
    std::vector<std::function<void(absl::Status)>> answered;
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
        std::string body = SerializeRecordBody(gap);
        pending_.push_back({next_seq_++, std::move(gap), std::move(body), nullptr,
                            absl::InfiniteFuture()});
        refused_ = 0;
      }
    }
    // Answered on another thread, so the next batch's write starts now.
    if (!answered.empty()) {
      std::lock_guard<std::mutex> lock(completion_mu_);
      completions_.push_back(std::move(answered));
      completion_cv_.notify_one();
    }
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
    for (auto& done : batch) done(absl::OkStatus());
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

void AuditLog::CheckpointLoop() {
  std::unique_lock<std::mutex> lock(stop_mu_);
  for (;;) {
    stop_cv_.wait_for(lock, absl::ToChronoMilliseconds(options_.checkpoint_interval));
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_) return;
    }
    uint64_t last = 0;
    {
      std::lock_guard<std::mutex> l(checkpoint_mu_);
      last = latest_ ? latest_->tree_size : 0;
    }
    if (tree_.size() != last || last == 0) {
      if (auto c = MakeCheckpoint(); !c.ok()) {
        Log(LogLevel::kError, "audit", "checkpoint failed",
            {{"error", std::string(c.status().message())}});
      }
    }
  }
}

absl::StatusOr<Checkpoint> AuditLog::MakeCheckpoint() {
  if (options_.signer == nullptr) {
    return absl::FailedPreconditionError("no checkpoint signing key configured");
  }
  std::lock_guard<std::mutex> serial(checkpoint_mu_);
  Checkpoint c;
  c.environment = options_.environment;
  c.tree_size = tree_.size();
  KW_ASSIGN_OR_RETURN(c.root, tree_.Root(c.tree_size));
  c.time = absl::Now();
  c.key_fingerprint = key_fingerprint_;
  KW_ASSIGN_OR_RETURN(c.signature,
                      options_.signer->Sign(options_.signing_key_label,
                                            CheckpointMessage(c.environment, c.tree_size,
                                                              c.root, c.time)));
  nlohmann::ordered_json j = {{"environment", c.environment},
                              {"tree_size", c.tree_size},
                              {"root", ToHex(c.root)},
                              {"time_unix_micros", absl::ToUnixMicros(c.time)},
                              {"time", IsoTime(c.time)},
                              {"key_fingerprint", c.key_fingerprint},
                              {"signature", absl::Base64Escape(c.signature)}};
  c.line = j.dump();
  if (!memory()) KW_RETURN_IF_ERROR(WriteDurably(kCheckpointsFile, c.line + "\n"));
  latest_ = c;
  if (options_.anchor != nullptr) {
    if (absl::Status s = options_.anchor->Store({c.tree_size, c.root}); !s.ok()) {
      Log(LogLevel::kError, "audit", "could not anchor the checkpoint in the key store",
          {{"error", std::string(s.message())}});
    }
  }
  return c;
}

absl::StatusOr<Checkpoint> AuditLog::LatestCheckpoint() const {
  std::lock_guard<std::mutex> lock(checkpoint_mu_);
  if (!latest_) return absl::NotFoundError("no checkpoint has been written yet");
  return *latest_;
}

absl::StatusOr<Hash> AuditLog::LeafAt(uint64_t index) const {
  if (index >= tree_.size()) return absl::OutOfRangeError("no such record");
  return tree_.LeafAt(index);
}

absl::StatusOr<std::string> AuditLog::ReadLine(uint64_t index) const {
  std::lock_guard<std::mutex> lock(lines_mu_);
  if (index >= offsets_.size()) return absl::OutOfRangeError("no such record");
  if (memory()) return memory_lines_[index];
  const uint64_t start = offsets_[index];
  int fd = ::open(Path(options_.dir, kRecordsFile).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::UnavailableError("cannot read the audit log");
  std::string out;
  char buf[4096];
  uint64_t pos = start;
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof(buf), static_cast<off_t>(pos));
    if (n <= 0) break;
    const size_t len = static_cast<size_t>(n);
    const void* nl = std::memchr(buf, '\n', len);
    if (nl != nullptr) {
      out.append(buf, static_cast<const char*>(nl) - buf);
      break;
    }
    out.append(buf, len);
    pos += static_cast<uint64_t>(n);
  }
  ::close(fd);
  return out;
}

absl::StatusOr<std::vector<std::string>> AuditLog::Read(uint64_t from, size_t limit,
                                                        const RecordFilter& filter,
                                                        uint64_t* next) const {
  std::vector<std::string> out;
  const uint64_t n = tree_.size();
  uint64_t i = from;
  // Bounded work per call: a selective filter over a long log returns
  // early with `next`, and the caller continues from there.
  constexpr uint64_t kMaxScan = 200000;
  for (; i < n && out.size() < limit && i - from < kMaxScan; ++i) {
    KW_ASSIGN_OR_RETURN(std::string line, ReadLine(i));
    if (filter.Matches(line)) out.push_back(std::move(line));
  }
  *next = i;
  return out;
}

AuditLog::~AuditLog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  writer_cv_.notify_all();
  watch_cv_.notify_all();
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stop_cv_.notify_all();
  }
  if (writer_.joinable()) writer_.join();
  if (watcher_.joinable()) watcher_.join();
  {
    std::lock_guard<std::mutex> lock(completion_mu_);
    completion_stop_ = true;
    completion_cv_.notify_all();
  }
  if (completer_.joinable()) completer_.join();
  if (checkpointer_.joinable()) checkpointer_.join();
  if (options_.signer != nullptr && opened_) {
    uint64_t last = 0;
    {
      std::lock_guard<std::mutex> l(checkpoint_mu_);
      last = latest_ ? latest_->tree_size : 0;
    }
    if (tree_.size() != last || last == 0) {
      if (auto c = MakeCheckpoint(); !c.ok()) {
        Log(LogLevel::kError, "audit", "final checkpoint failed",
            {{"error", std::string(c.status().message())}});
      }
    }
  }
}

}  // namespace keyward::audit
