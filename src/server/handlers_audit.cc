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
