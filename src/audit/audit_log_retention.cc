// Retention: pruning closed segments (keeping the compact range of what
// they held), and the automatic pass that archives and prunes by the
// configured retention.
#include "absl/strings/str_cat.h"
#include "audit/archive.h"
#include "audit/audit_log.h"
#include "audit/audit_log_files.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "metrics/metrics.h"

namespace keyward::audit {
namespace {

std::string Range(const std::vector<SegmentStatus>& s) {
  if (s.empty()) return "none";
  const uint64_t end = s.back().first + s.back().count;
  return absl::StrCat(s.size(), " segment(s), records ", s.front().first, "..", end - 1);
}

}  // namespace

absl::StatusOr<AuditLog::PruneResult> AuditLog::Prune(const PruneRequest& request) {
  if (!storage_->segmented()) return storage_->Prune(PrunedHistory{});  // kFailedPrecondition
  std::lock_guard<std::mutex> serial(prune_serial_);
  if (options_.signer != nullptr) KW_RETURN_IF_ERROR(SignClosedSegments());
  PruneResult result;
  result.pruned_before = tree_.pruned();
  result.pruned_after = result.pruned_before;
  for (const SegmentStatus& s : storage_->Segments()) {
    if (!s.closed || s.count == 0 || s.last_time >= request.before) break;
    result.segments.push_back(s);
    if (!s.archived || s.archived->sha256 != s.sha256) result.unarchived.push_back(s);
  }
  if (result.segments.empty() || request.dry_run) {
    if (!result.segments.empty()) {
      result.pruned_after = result.segments.back().first + result.segments.back().count;
    }
    return result;
  }
  if (!result.unarchived.empty() && !request.force) {
    std::string names;
    for (const SegmentStatus& s : result.unarchived) {
      absl::StrAppend(&names, names.empty() ? "" : ", ", s.path);
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to prune: ", result.unarchived.size(), " segment(s) were never archived (",
        names, "). Archive them first (keyward audit archive --before DATE --to DIR on the "
        "keywardd host), or prune with --force, which is recorded; nothing was removed"));
  }
  const uint64_t p = result.segments.back().first + result.segments.back().count;
  // What stays: the compact range, the last leaf, and how the previous
  // prune point extends into this one.
  PrunedHistory history;
  {
    std::lock_guard<std::mutex> lock(prune_mu_);
    if (pruned_history_) history = *pruned_history_;
  }
  const uint64_t old = history.size;
  KW_ASSIGN_OR_RETURN(history.nodes, tree_.CompactRange(p));
  history.last_leaf = tree_.LeafAt(p - 1);
  if (old > 0) {
    PrunedHistory::Hop hop;
    hop.from = old;
    hop.to = p;
    KW_ASSIGN_OR_RETURN(hop.from_root, tree_.Root(old));
    KW_ASSIGN_OR_RETURN(hop.proof, tree_.ConsistencyProof(old, p));
    history.hops.push_back(std::move(hop));
  }
  history.size = p;
  history.segments += result.segments.size();
  if (options_.signer != nullptr) {
    history.environment = options_.environment;
    history.time = absl::Now();
    history.key_fingerprint = key_fingerprint_;
    KW_ASSIGN_OR_RETURN(history.signature,
                        options_.signer->Sign(options_.signing_key_label, PrunedMessage(history)));
  }
  // The checkpoint that closed the last segment signs the root at p; one
  // is made now if a crash lost it.
  const SegmentStatus& last = result.segments.back();
  bool signed_at_p = false;
  {
    std::lock_guard<std::mutex> lock(checkpoint_mu_);
    signed_at_p = closing_signed_.contains(last.first);
  }
  if (!signed_at_p && options_.signer != nullptr) {
    KW_RETURN_IF_ERROR(MakeCheckpointAt(p, ClosedSegment{last.first, last.count, last.sha256})
                           .status());
  }
  // Recorded before anything is removed; the outcome follows.
  AuditRecord r;
  r.time = absl::Now();
  r.request_id = request.request_id;
  r.principal = request.principal;
  r.peer = request.peer;
  r.operation = "prune-audit-log";
  r.decision = "allow";
  r.result = "PENDING";
  const std::string what = absl::StrCat(
      "pruning ", Range(result.segments), " whose last record is before ",
      IsoTime(request.before),
      result.unarchived.empty()
          ? std::string("; every one archived")
          : absl::StrCat("; FORCED: ", result.unarchived.size(), " never archived"),
      request.reason.empty() ? std::string() : absl::StrCat("; reason: ", request.reason));
  r.detail = what.substr(0, 600);
  KW_RETURN_IF_ERROR(Append(r));
  CrashPoint("prune-recorded");
  absl::Status s = storage_->Prune(history);
  if (s.ok()) {
    // Readers find the last pruned leaf before the tree forgets it.
    {
      std::lock_guard<std::mutex> lock(prune_mu_);
      pruned_history_ = history;
    }
    s = tree_.Prune(p);
  }
  r.time = absl::Now();
  r.result = s.ok() ? "OK" : absl::StatusCodeToString(s.code());
  r.detail = s.ok() ? absl::StrCat("pruned ", Range(result.segments),
                                   "; the live log now starts at record ", p)
                    : absl::StrCat("prune failed: ", s.message()).substr(0, 600);
  if (absl::Status a = Append(r); !a.ok() && s.ok()) s = a;
  if (!s.ok()) return s;
  result.pruned_after = p;
  Log(LogLevel::kInfo, "audit", "pruned audit segments",
      {{"segments", absl::StrCat(result.segments.size())},
       {"records_before", absl::StrCat(p)},
       {"by", request.principal},
       {"forced", result.unarchived.empty() ? "no" : "yes"}});
  return result;
}

void AuditLog::RetentionPass() {
  if (!storage_->segmented() || options_.dir.empty()) return;
  static auto& unarchived_gauge =
      metrics::Global()
          .GaugeFamily("keyward_audit_unarchived_segments",
                       "Closed audit segments not archived yet (retention cannot prune them).")
          .With({});
  if (!options_.retention_archive_dir.empty()) {
    ArchiveOptions a;
    a.log_dir = options_.dir;
    a.archive_dir = options_.retention_archive_dir;
    a.by = "keywardd:retention";
    auto report = ArchiveSegments(a, [&](const ArchiveMark& m) { return MarkArchived(m); });
    if (!report.ok()) {
      Log(LogLevel::kError, "audit", "archiving closed segments failed",
          {{"archive_dir", a.archive_dir}, {"error", std::string(report.status().message())}});
    }
  }
  int unarchived = 0;
  for (const SegmentStatus& s : storage_->Segments()) {
    if (s.closed && (!s.archived || s.archived->sha256 != s.sha256)) ++unarchived;
  }
  unarchived_gauge.Set(unarchived);
  if (options_.retention_keep <= absl::ZeroDuration()) return;
  PruneRequest req;
  req.before = absl::Now() - options_.retention_keep;
  req.force = options_.retention_force;
  req.principal = "keywardd:retention";
  req.request_id = "retention";
  req.reason = absl::StrCat("audit.retention.keep ", absl::FormatDuration(options_.retention_keep));
  auto pruned = Prune(req);
  if (!pruned.ok()) {
    Log(LogLevel::kWarning, "audit", "retention could not prune",
        {{"error", std::string(pruned.status().message())}});
  }
}

}  // namespace keyward::audit
