// Handlers: the audit log's checkpoints, proofs and records.
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "server/convert.h"
#include "server/key_management_service.h"

namespace keyward::server {
namespace {
std::string HashBytes(const audit::Hash& h) { return std::string(h.begin(), h.end()); }
}  // namespace

absl::Status KeyManagementService::GetAuditCheckpoint(Call& call,
                                                      const v1::GetAuditCheckpointRequest& req,
                                                      v1::AuditCheckpoint* resp) {
  KW_RETURN_IF_ERROR(call.Authorize("*", {}));
  audit::Checkpoint c;
  if (req.fresh()) {
    KW_ASSIGN_OR_RETURN(c, deps_.audit->MakeCheckpoint());
  } else {
    KW_ASSIGN_OR_RETURN(c, deps_.audit->LatestCheckpoint());
  }
  resp->set_environment(c.environment);
  resp->set_tree_size(c.tree_size);
  resp->set_root_hash(HashBytes(c.root));
  resp->set_time_unix_micros(absl::ToUnixMicros(c.time));
  resp->set_key_fingerprint(c.key_fingerprint);
  resp->set_signature(c.signature);
  resp->set_line(c.line);
  resp->set_public_key_pem(deps_.audit->public_key_pem());
  return absl::OkStatus();
}

absl::Status KeyManagementService::GetInclusionProof(Call& call,
                                                     const v1::GetInclusionProofRequest& req,
                                                     v1::InclusionProof* resp) {
  KW_RETURN_IF_ERROR(call.Authorize("*", {}));
  uint64_t size = req.tree_size();
  if (size == 0) {
    KW_ASSIGN_OR_RETURN(audit::Checkpoint c, deps_.audit->LatestCheckpoint());
    size = c.tree_size;
  }
  KW_ASSIGN_OR_RETURN(auto path, deps_.audit->InclusionProof(req.index(), size));
  KW_ASSIGN_OR_RETURN(audit::Hash leaf, deps_.audit->LeafAt(req.index()));
  KW_ASSIGN_OR_RETURN(audit::Hash root, deps_.audit->Root(size));
  resp->set_index(req.index());
  resp->set_tree_size(size);
  resp->set_leaf_hash(HashBytes(leaf));
  for (const auto& h : path) resp->add_path(HashBytes(h));
  resp->set_root_hash(HashBytes(root));
  return absl::OkStatus();
}

absl::Status KeyManagementService::GetConsistencyProof(
    Call& call, const v1::GetConsistencyProofRequest& req, v1::ConsistencyProof* resp) {
  KW_RETURN_IF_ERROR(call.Authorize("*", {}));
  uint64_t to = req.to_size();
  if (to == 0) {
    KW_ASSIGN_OR_RETURN(audit::Checkpoint c, deps_.audit->LatestCheckpoint());
    to = c.tree_size;
  }
  KW_ASSIGN_OR_RETURN(auto path, deps_.audit->ConsistencyProof(req.from_size(), to));
  KW_ASSIGN_OR_RETURN(audit::Hash from_root, deps_.audit->Root(req.from_size()));
  KW_ASSIGN_OR_RETURN(audit::Hash to_root, deps_.audit->Root(to));
  resp->set_from_size(req.from_size());
  resp->set_to_size(to);
  for (const auto& h : path) resp->add_path(HashBytes(h));
  resp->set_from_root(HashBytes(from_root));
  resp->set_to_root(HashBytes(to_root));
  return absl::OkStatus();
}

absl::Status KeyManagementService::ReadAuditRecords(Call& call,
                                                    const v1::ReadAuditRecordsRequest& req,
                                                    v1::ReadAuditRecordsResponse* resp) {
  KW_RETURN_IF_ERROR(call.Authorize("*", {}));
  if (req.limit() < 0 || req.limit() > 10000) {
    return absl::InvalidArgumentError("limit must be between 1 and 10000");
  }
  const size_t limit = req.limit() == 0 ? 1000 : static_cast<size_t>(req.limit());
  audit::RecordFilter filter;
  if (req.since_unix_micros() != 0) filter.since = absl::FromUnixMicros(req.since_unix_micros());
  if (req.until_unix_micros() != 0) filter.until = absl::FromUnixMicros(req.until_unix_micros());
  filter.principal = req.principal();
  filter.key = req.key_name();
  filter.operation = req.operation();
  filter.decision = req.decision();
  filter.context = HashContext(FromProto(req.encryption_context()));
  const uint64_t size = deps_.audit->size();
  uint64_t from = req.from_index();
  if (req.from_end()) from = size > limit ? size - limit : 0;
  uint64_t next = 0;
  KW_ASSIGN_OR_RETURN(auto records, deps_.audit->Read(from, limit, filter, &next));
  // Records are small, but a reply of 10,000 of them must still fit: stop
  // early and say where to continue.
  const size_t budget = deps_.max_reply_bytes / 2;
  size_t bytes = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    bytes += records[i].size() + 8;
    if (bytes > budget && i > 0) {
      auto chain = audit::ReadChainFields(records[i]);
      if (chain.ok()) {
        next = chain->seq;
        break;
      }
    }
    resp->add_records(std::move(records[i]));
  }
  resp->set_next_index(next);
  resp->set_size(size);
  return absl::OkStatus();
}

}  // namespace keyward::server

namespace keyward::server {
namespace {

void ToProto(const audit::SegmentStatus& s, v1::AuditSegment* out) {
  out->set_first_index(s.first);
  out->set_records(s.count);
  out->set_bytes(s.bytes);
  out->set_closed(s.closed);
  out->set_sha256(std::string(s.sha256.begin(), s.sha256.end()));
  if (s.count > 0) {
    out->set_first_time_unix_micros(absl::ToUnixMicros(s.first_time));
    out->set_last_time_unix_micros(absl::ToUnixMicros(s.last_time));
  }
  if (s.archived && s.archived->sha256 == s.sha256) {
    out->set_archived_to(s.archived->destination);
    out->set_archived_unix_micros(absl::ToUnixMicros(s.archived->time));
  }
  const size_t slash = s.path.rfind('/');
  out->set_file(slash == std::string::npos ? s.path : s.path.substr(slash + 1));
}

}  // namespace

absl::Status KeyManagementService::ListAuditSegments(Call& call,
                                                     const v1::ListAuditSegmentsRequest&,
                                                     v1::ListAuditSegmentsResponse* resp) {
  KW_RETURN_IF_ERROR(call.Authorize("*", {}));
  std::vector<audit::SegmentStatus> segments = deps_.audit->Segments();
  resp->set_segmented(!segments.empty());
  resp->set_pruned_records(deps_.audit->pruned());
  // Bounded: the newest 10,000 (a year of daily segments is far less).
  const size_t skip = segments.size() > 10000 ? segments.size() - 10000 : 0;
  for (size_t i = skip; i < segments.size(); ++i) ToProto(segments[i], resp->add_segments());
  return absl::OkStatus();
}

absl::Status KeyManagementService::PruneAuditLog(Call& call, const v1::PruneAuditLogRequest& req,
                                                 v1::PruneAuditLogResponse* resp) {
  if (req.before_unix_micros() <= 0) {
    return absl::InvalidArgumentError(
        "before is required: the time before which closed segments are pruned");
  }
  KW_RETURN_IF_ERROR(call.Authorize("*", {}));
  audit::AuditLog::PruneRequest p;
  p.before = absl::FromUnixMicros(req.before_unix_micros());
  p.force = req.force();
  p.dry_run = req.dry_run();
  p.principal = call.principal_;
  p.request_id = call.request_id_;
  p.peer = call.peer_;
  p.reason = req.reason();
  KW_ASSIGN_OR_RETURN(audit::AuditLog::PruneResult r, deps_.audit->Prune(p));
  for (const audit::SegmentStatus& s : r.segments) ToProto(s, resp->add_segments());
  resp->set_pruned_before(r.pruned_before);
  resp->set_pruned_after(r.pruned_after);
  resp->set_unarchived(r.unarchived.size());
  call.set_detail(absl::StrCat(req.dry_run() ? "dry run: would prune " : "pruned ",
                               r.segments.size(), " segment(s); the live log starts at record ",
                               r.pruned_after, r.unarchived.empty() ? "" : " (forced)"));
  return absl::OkStatus();
}

}  // namespace keyward::server
