// The audit log's signed checkpoints and its anchor: the history checked
// when the log opens, and a checkpoint signed and anchored every interval.
#include <optional>
#include <set>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "audit/audit_log.h"
#include "audit/audit_log_files.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "crypto/signature.h"
#include "metrics/metrics.h"
#include "nlohmann/json.hpp"

namespace keyward::audit {

std::string CheckpointMessage(absl::string_view environment, uint64_t tree_size,
                              const Hash& root, absl::Time time,
                              const std::optional<ClosedSegment>& segment) {
  if (!segment) {
    return absl::StrCat("keyward audit checkpoint v1\n", environment, "\n", tree_size,
                        "\n", ToHex(root), "\n", absl::ToUnixMicros(time), "\n");
  }
  return absl::StrCat("keyward audit checkpoint v2\n", environment, "\n", tree_size, "\n",
                      ToHex(root), "\n", absl::ToUnixMicros(time), "\nsegment ",
                      segment->first, " ", segment->count, " ", ToHex(segment->sha256), "\n");
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
  if (j.contains("segment")) {
    ClosedSegment s;
    try {
      const auto& sj = j["segment"];
      s.first = sj.at("first").get<uint64_t>();
      s.count = sj.at("records").get<uint64_t>();
      if (!FromHex(sj.at("sha256").get<std::string>(), &s.sha256)) {
        return absl::DataLossError("a checkpoint names a segment with a malformed digest");
      }
    } catch (const nlohmann::json::exception&) {
      return absl::DataLossError("a checkpoint's segment field is malformed");
    }
    if (s.first + s.count != c.tree_size) {
      return absl::DataLossError("a checkpoint closes a segment that does not end at its size");
    }
    c.segment = s;
  }
  c.line = std::string(line);
  return c;
}

absl::Status AuditLog::CheckHistory(const std::vector<std::string>& checkpoints) {
  // Every checkpoint's root must be the root of the records it covers.
  // Only the latest needs its signature checked: it covers every earlier
  // checkpoint's records, whose roots then follow from the same leaves.
  const std::string verify = storage_->VerifyCommand();
  std::optional<Checkpoint> last;
  int n = 0;
  for (const std::string& line : checkpoints) {
    ++n;
    auto c = ParseCheckpoint(line);
    if (!c.ok()) return Tampered(absl::StrCat("checkpoint ", n, " is malformed"), verify);
    if (c->tree_size != 0 && c->tree_size < tree_.pruned()) {
      continue;  // its records were pruned (and archived): nothing to compare
    }
    if (c->tree_size > tree_.size()) {
      return Tampered(absl::StrCat("checkpoint ", n, " covers ", c->tree_size,
                                   " records but the log holds ", tree_.size(),
                                   ": records were removed"),
                      verify);
    }
    KW_ASSIGN_OR_RETURN(Hash root, tree_.Root(c->tree_size));
    if (root != c->root) {
      return Tampered(absl::StrCat("records 0..", c->tree_size, " no longer match checkpoint ",
                                   n, ": a record in that range was changed"),
                      verify);
    }
    // The latest is the largest: a segment's checkpoint may be written
    // after a larger periodic one.
    if (!last || c->tree_size >= last->tree_size) last = std::move(*c);
  }
  if (last && options_.signer != nullptr) {
    if (last->key_fingerprint != key_fingerprint_ ||
        !crypto::VerifyEcdsaP256(public_key_pem_, CheckpointMessage(*last), last->signature)
             .ok()) {
      return Tampered(absl::StrCat(
          "the latest checkpoint (", last->tree_size,
          " records) is not signed by this keywardd's HSM key ", key_fingerprint_.substr(0, 16),
          ": the checkpoints were re-signed or replaced"),
          verify);
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
      if (anchor->tree_size != 0 && anchor->tree_size < tree_.pruned()) {
        return Tampered(absl::StrCat("keywardd sealed a checkpoint of ", anchor->tree_size,
                                     " records, but the log was pruned up to ", tree_.pruned(),
                                     " since: the key store was restored from before the "
                                     "prune, or the log is not this keywardd's"),
                        verify);
      }
      if (anchor->tree_size > tree_.size()) {
        return Tampered(absl::StrCat("keywardd sealed a checkpoint of ", anchor->tree_size,
                                     " records, but the log holds ", tree_.size(),
                                     ": records were removed"),
                        verify);
      }
      KW_ASSIGN_OR_RETURN(Hash root, tree_.Root(anchor->tree_size));
      if (root != anchor->root) {
        return Tampered(absl::StrCat("records 0..", anchor->tree_size,
                                     " are not the ones keywardd sealed: the log was rewritten"),
                        verify);
      }
    } else if (tree_.size() > 0) {
      if (!options_.adopt_log) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the key store holds no sealed checkpoint for ", storage_->Describe(),
            ", which holds ", tree_.size(),
            " records. Either the anchor was removed from the key store, and the log may have "
            "been cut back to an earlier checkpoint, or the log was written before keywardd "
            "anchored its logs, or the key store was restored without it. keywardd refuses to sign "
            "it. Check it with `", verify, " --checkpoint-key-fingerprint "
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

void AuditLog::CheckpointLoop() {
  // Signs the checkpoints of closed segments (retrying until the HSM
  // answers), a checkpoint every checkpoint_interval, and runs retention.
  // stop_mu_ is held only while waiting: the writer takes it to wake us.
  const bool periodic = options_.checkpoint_interval > absl::ZeroDuration();
  absl::Time next_checkpoint = absl::Now() + options_.checkpoint_interval;
  for (;;) {
    absl::Duration wait = periodic ? next_checkpoint - absl::Now() : absl::Seconds(1);
    {
      std::unique_lock<std::mutex> lock(stop_mu_);
      {
        std::lock_guard<std::mutex> l(closing_mu_);
        if (!closed_unsigned_.empty()) wait = std::min(wait, absl::Milliseconds(200));
      }
      if (wait > absl::ZeroDuration()) {
        stop_cv_.wait_for(lock, absl::ToChronoMicroseconds(wait));
      }
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_) return;
    }
    if (absl::Status s = SignClosedSegments(); !s.ok()) {
      Log(LogLevel::kError, "audit", "could not sign a closed segment's checkpoint; retrying",
          {{"error", std::string(s.message())}});
    }
    if (!periodic || absl::Now() < next_checkpoint) continue;
    next_checkpoint = absl::Now() + options_.checkpoint_interval;
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
    if (absl::Now() - last_retention_ >= options_.retention_interval) {
      RetentionPass();
      last_retention_ = absl::Now();
    }
  }
}

absl::Status AuditLog::SignClosedSegments() {
  // One signer at a time (the checkpointer, Prune, the destructor, tests).
  std::lock_guard<std::mutex> serial(sign_closed_mu_);
  for (;;) {
    ClosedSegment next;
    {
      std::lock_guard<std::mutex> l(closing_mu_);
      if (closed_unsigned_.empty()) return absl::OkStatus();
      next = closed_unsigned_.front();
    }
    bool done = false;
    {
      std::lock_guard<std::mutex> l(checkpoint_mu_);
      done = closing_signed_.contains(next.first);
    }
    if (!done) {
      KW_RETURN_IF_ERROR(MakeCheckpointAt(next.first + next.count, next).status());
    }
    std::lock_guard<std::mutex> l(closing_mu_);
    if (!closed_unsigned_.empty() && closed_unsigned_.front().first == next.first) {
      closed_unsigned_.pop_front();
    }
  }
}

absl::StatusOr<Checkpoint> AuditLog::MakeCheckpoint() {
  return MakeCheckpointAt(tree_.size(), std::nullopt);
}

absl::StatusOr<Checkpoint> AuditLog::MakeCheckpointAt(
    uint64_t size, const std::optional<ClosedSegment>& segment) {
  if (options_.signer == nullptr) {
    return absl::FailedPreconditionError("no checkpoint signing key configured");
  }
  std::lock_guard<std::mutex> serial(checkpoint_mu_);
  Checkpoint c;
  c.environment = options_.environment;
  c.tree_size = size;
  KW_ASSIGN_OR_RETURN(c.root, tree_.Root(c.tree_size));
  c.time = absl::Now();
  c.key_fingerprint = key_fingerprint_;
  c.segment = segment;
  KW_ASSIGN_OR_RETURN(c.signature,
                      options_.signer->Sign(options_.signing_key_label, CheckpointMessage(c)));
  nlohmann::ordered_json j = {{"environment", c.environment},
                              {"tree_size", c.tree_size},
                              {"root", ToHex(c.root)},
                              {"time_unix_micros", absl::ToUnixMicros(c.time)},
                              {"time", IsoTime(c.time)},
                              {"key_fingerprint", c.key_fingerprint},
                              {"signature", absl::Base64Escape(c.signature)}};
  if (segment) {
    j["version"] = 2;
    j["segment"] = {{"first", segment->first},
                    {"records", segment->count},
                    {"sha256", ToHex(segment->sha256)}};
  }
  c.line = j.dump();
  KW_RETURN_IF_ERROR(storage_->AppendCheckpoint(c.line));
  if (segment) closing_signed_.insert(segment->first);
  // A segment's checkpoint can be smaller than one signed just before it:
  // the latest (and the anchor) only move forward.
  if (latest_ && latest_->tree_size > c.tree_size) return c;
  latest_ = c;
  if (options_.anchor != nullptr) {
    if (absl::Status s = options_.anchor->Store({c.tree_size, c.root}); !s.ok()) {
      Log(LogLevel::kError, "audit", "could not anchor the checkpoint in the key store",
          {{"error", std::string(s.message())}});
    }
  }
  return c;
}

absl::Status AuditLog::CloseUnclosedSegments(const std::vector<std::string>& checkpoints) {
  if (!storage_->segmented() || options_.signer == nullptr) return absl::OkStatus();
  std::set<uint64_t> named;
  for (const std::string& line : checkpoints) {
    if (auto c = ParseCheckpoint(line); c.ok() && c->segment) named.insert(c->segment->first);
  }
  {
    std::lock_guard<std::mutex> lock(checkpoint_mu_);
    closing_signed_.insert(named.begin(), named.end());
  }
  for (const SegmentStatus& s : storage_->Segments()) {
    if (!s.closed || named.contains(s.first)) continue;
    Log(LogLevel::kInfo, "audit", "signing the checkpoint of a segment closed before a restart",
        {{"segment", s.path}});
    KW_RETURN_IF_ERROR(
        MakeCheckpointAt(s.first + s.count, ClosedSegment{s.first, s.count, s.sha256}).status());
  }
  return absl::OkStatus();
}

void AuditLog::MaybeCloseSegment() {
  // Writer thread: close the file only; the checkpointer signs (the writer
  // never waits for the HSM).  After a failure, wait before trying again.
  if (!storage_->segmented() || absl::Now() < next_close_attempt_ ||
      !storage_->SegmentDue(absl::Now())) {
    return;
  }
  auto closed = storage_->CloseSegment();
  if (!closed.ok()) {
    next_close_attempt_ = absl::Now() + absl::Seconds(10);
    Log(LogLevel::kError, "audit", "could not close the audit segment; records go on in it",
        {{"error", std::string(closed.status().message())}});
    return;
  }
  static auto& closed_total = metrics::Global()
                                  .CounterFamily("keyward_audit_segments_closed_total",
                                                 "Audit log segments closed (by size or age).")
                                  .With({});
  closed_total.Inc();
  CrashPoint("segment-closed");
  if (options_.signer == nullptr) return;
  {
    std::lock_guard<std::mutex> l(closing_mu_);
    closed_unsigned_.push_back(ClosedSegment{closed->first, closed->count, closed->sha256});
  }
  std::lock_guard<std::mutex> l(stop_mu_);
  stop_cv_.notify_all();
}

absl::StatusOr<Checkpoint> AuditLog::LatestCheckpoint() const {
  std::lock_guard<std::mutex> lock(checkpoint_mu_);
  if (!latest_) return absl::NotFoundError("no checkpoint has been written yet");
  return *latest_;
}

}  // namespace keyward::audit
