// Handlers: the access policy and grants.
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "server/convert.h"
#include "server/key_management_service.h"

namespace keyward::server {
namespace {

void ToProto(const policy::Grant& g, v1::Grant* out) {
  out->set_id(g.id);
  out->set_principal(g.principal);
  out->set_key_name(g.key);
  for (const auto& op : g.operations) out->add_operations(op);
  for (const auto& [k, v] : g.context) (*out->mutable_encryption_context())[k] = v;
  out->set_created_unix_micros(absl::ToUnixMicros(g.created));
  out->set_expires_unix_micros(absl::ToUnixMicros(g.expires));
  out->set_revoked_unix_micros(g.revoked ? absl::ToUnixMicros(*g.revoked) : 0);
  out->set_created_by(g.created_by);
  out->set_reason(g.reason);
}

}  // namespace

absl::Status KeyManagementService::GetPolicy(Call& call, const v1::GetPolicyRequest&,
                                             v1::PolicyDocument* resp) {
  KW_RETURN_IF_ERROR(call.Authorize("*", {}));
  resp->set_yaml(deps_.access->PolicyText());
  return absl::OkStatus();
}

absl::Status KeyManagementService::SetPolicy(Call& call, const v1::PolicyDocument& req,
                                             v1::PolicyDocument* resp) {
  KW_RETURN_IF_ERROR(call.Authorize("*", {}));
  // The change is on the record, durably, before it takes effect (as for a
  // SIGHUP reload): if the record cannot be written, the old policy stays.
  // The call's own record, written after, gives the outcome.
  KW_ASSIGN_OR_RETURN(
      PolicyChange change,
      deps_.access->SetPolicy(req.yaml(), [&](const PolicyChange& c) {
        audit::AuditRecord r;
        r.time = absl::Now();
        r.request_id = "set-policy";
        r.principal = call.principal();
        r.operation = "manage-policy";
        r.key = "*";
        r.decision = "allow";
        r.result = "OK";
        r.detail = absl::StrCat("policy change about to take effect: ", c.old_digest, " -> ",
                                c.new_digest);
        return deps_.audit->Append(std::move(r));
      }));
  // Who changed access control, from what to what: the record says it, so
  // a policy change is never indistinguishable from a read of it.
  call.set_detail(
      absl::StrCat("policy set: ", change.old_digest, " -> ", change.new_digest));
  resp->set_yaml(deps_.access->PolicyText());
  return absl::OkStatus();
}

absl::Status KeyManagementService::TestPolicy(Call& call, const v1::TestPolicyRequest& req,
                                              v1::PolicyDecision* resp) {
  KW_RETURN_IF_ERROR(call.Authorize("*", {}));
  if (!policy::IsKnownOperation(req.operation())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown operation '", Bounded(req.operation()), "' (see docs/policy.md)"));
  }
  const EncryptionContext context = FromProto(req.encryption_context());
  policy::Request r{req.principal(), req.operation(),
                    req.key_name().empty() ? "*" : req.key_name(), &context, absl::Now()};
  const policy::Decision d = deps_.access->Decide(r);
  resp->set_allowed(d.allowed);
  resp->set_rule(d.rule);
  resp->set_reason(d.reason);
  return absl::OkStatus();
}

absl::Status KeyManagementService::CreateGrant(Call& call, const v1::CreateGrantRequest& req,
                                               v1::Grant* resp) {
  // The grant's key glob must lie within the creator's own manage-grants
  // scope (containment, not matching the glob as if it were a name), and a
  // principal grants to itself only where the policy allows `self-grant`.
  KW_RETURN_IF_ERROR(call.AuthorizePattern(req.key_name()));
  if (req.principal() == call.principal()) {
    KW_RETURN_IF_ERROR(call.AuthorizePattern(req.key_name(), "self-grant"));
  }
  GrantRequest g;
  g.principal = req.principal();
  g.key = req.key_name();
  g.operations = {req.operations().begin(), req.operations().end()};
  g.context = FromProto(req.encryption_context());
  g.ttl = absl::Seconds(req.ttl_seconds());
  g.reason = req.reason();
  KW_ASSIGN_OR_RETURN(policy::Grant grant, deps_.access->CreateGrant(g, call.principal()));
  call.set_detail(absl::StrCat("grant ", grant.id, " for ", Bounded(grant.principal, 128)));
  ToProto(grant, resp);
  return absl::OkStatus();
}

absl::Status KeyManagementService::ListGrants(Call& call, const v1::ListGrantsRequest& req,
                                              v1::ListGrantsResponse* resp) {
  KW_RETURN_IF_ERROR(call.Authorize("*", {}));
  KW_ASSIGN_OR_RETURN(auto grants, deps_.access->ListGrants(req.include_inactive()));
  // Newest last; a reply over the limit keeps the newest grants.
  const size_t budget = deps_.max_reply_bytes / 2;
  size_t first = 0;
  size_t bytes = 0;
  for (size_t i = grants.size(); i-- > 0;) {
    bytes += 256 + grants[i].reason.size() + grants[i].principal.size() + grants[i].key.size();
    if (bytes > budget) {
      first = i + 1;
      break;
    }
  }
  for (size_t i = first; i < grants.size(); ++i) ToProto(grants[i], resp->add_grants());
  if (first > 0) call.set_detail(absl::StrCat(first, " older grants left out of the reply"));
  return absl::OkStatus();
}

absl::Status KeyManagementService::RevokeGrant(Call& call, const v1::RevokeGrantRequest& req,
                                               v1::Grant* resp) {
  // Permission before existence: a grant that does not exist is decided as
  // if it covered every key, so only a caller who may manage every grant
  // learns that it does not exist; anyone else is refused either way.
  auto existing = deps_.access->FindGrant(req.id());
  if (!existing.ok() && !absl::IsNotFound(existing.status())) return existing.status();
  KW_RETURN_IF_ERROR(call.AuthorizePattern(existing.ok() ? existing->key : "*"));
  if (!existing.ok()) return existing.status();
  KW_ASSIGN_OR_RETURN(policy::Grant revoked, deps_.access->RevokeGrant(req.id()));
  ToProto(revoked, resp);
  return absl::OkStatus();
}

}  // namespace keyward::server
