// Handlers: break-glass grants (docs/incident-response.md).  Who may
// request, approve, read and revoke is the policy's `breakglass:` section,
// decided here and recorded as the call's decision, with the rule
// "breakglass:<id>" that links every record of a grant.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/bounded.h"
#include "base/duration.h"
#include "base/status_macros.h"
#include "server/convert.h"
#include "server/key_management_service.h"

namespace keyward::server {
namespace {

using policy::BreakGlassGrant;

void ToProto(const BreakGlassGrant& g, v1::BreakGlassGrant* out) {
  out->set_id(g.id);
  out->set_requester(g.requester);
  out->set_key_name(g.key);
  for (const auto& [k, v] : g.context) (*out->mutable_encryption_context())[k] = v;
  out->set_reason(g.reason);
  out->set_policy_entry(g.rule);
  out->set_quorum(g.quorum);
  out->set_duration_seconds(absl::ToInt64Seconds(g.duration));
  out->set_max_decrypts(g.max_decrypts);
  out->set_decrypts(g.decrypts);
  out->set_requested_unix_micros(absl::ToUnixMicros(g.requested));
  out->set_request_expires_unix_micros(absl::ToUnixMicros(g.request_expires));
  for (const auto& a : g.approvals) {
    auto* p = out->add_approvals();
    p->set_principal(a.principal);
    p->set_time_unix_micros(absl::ToUnixMicros(a.time));
  }
  out->set_activated_unix_micros(g.activated ? absl::ToUnixMicros(*g.activated) : 0);
  out->set_expires_unix_micros(absl::ToUnixMicros(g.expires()));
  out->set_revoked_unix_micros(g.revoked ? absl::ToUnixMicros(*g.revoked) : 0);
  out->set_revoked_by(g.revoked_by);
  out->set_state(policy::BreakGlassStateName(g.StateAt(absl::Now())));
}

std::string Link(const BreakGlassGrant& g) { return absl::StrCat("breakglass:", g.id); }

}  // namespace

absl::Status KeyManagementService::RequestBreakGlass(Call& call,
                                                     const v1::RequestBreakGlassRequest& req,
                                                     v1::BreakGlassGrant* resp) {
  const EncryptionContext context = FromProto(req.encryption_context());
  KW_ASSIGN_OR_RETURN(std::string id, AccessControl::NewBreakGlassId());
  const auto rule = deps_.access->BreakGlassRuleFor(call.principal(), req.key_name());
  policy::Decision d;
  if (rule) {
    d = {true, absl::StrCat("breakglass:", id),
         absl::StrCat("allowed by the policy's breakglass entry '", rule->name, "'")};
  } else {
    d = {false, "",
         absl::StrCat("no breakglass entry in the policy lets ", Bounded(call.principal(), 256),
                      " request break-glass access to key '", Bounded(req.key_name(), 256),
                      "'")};
  }
  KW_RETURN_IF_ERROR(call.AuthorizeWith(req.key_name(), context, std::move(d)));
  if (req.duration_seconds() < 1 ||
      req.duration_seconds() > absl::ToInt64Seconds(policy::kBreakGlassMaxDuration)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a break-glass grant lasts between 1s and ", FormatHumanDuration(rule->max_duration),
        " (--duration)"));
  }
  // A request for a key that does not exist is a mistake worth saying now,
  // not after two approvers were woken up.
  KW_RETURN_IF_ERROR(core_->GetKey(req.key_name()).status());
  BreakGlassRequest r;
  r.requester = call.principal();
  r.key = req.key_name();
  r.context = context;
  r.reason = req.reason();
  r.duration = absl::Seconds(req.duration_seconds());
  r.max_decrypts = req.max_decrypts();
  KW_ASSIGN_OR_RETURN(BreakGlassGrant g, deps_.access->RequestBreakGlass(id, r, *rule));
  call.set_detail(absl::StrCat(
      "break-glass ", g.id, " requested: needs ", g.quorum, " approval(s) (entry ", g.rule,
      "), for ", FormatHumanDuration(g.duration), ", ",
      g.max_decrypts == 0 ? std::string("no count limit")
                          : absl::StrCat("at most ", g.max_decrypts, " decrypts"),
      "; reason: ", Bounded(g.reason, 200)));
  ToProto(g, resp);
  return absl::OkStatus();
}

absl::Status KeyManagementService::ApproveBreakGlass(Call& call,
                                                     const v1::BreakGlassIdRequest& req,
                                                     v1::BreakGlassGrant* resp) {
  KW_ASSIGN_OR_RETURN(BreakGlassGrant g, deps_.access->FindBreakGlass(req.id()));
  const auto rule = deps_.access->BreakGlassRuleFor(g.requester, g.key);
  policy::Decision d{false, Link(g), ""};
  if (!rule) {
    d.reason = absl::StrCat("the policy has no breakglass entry for break-glass request ", g.id,
                            " any more; it cannot be approved");
  } else if (call.principal() == g.requester) {
    d.reason = absl::StrCat("you requested break-glass grant ", g.id,
                            "; the requester never counts towards its quorum, the approvals "
                            "must come from others");
  } else if (!policy::Policy::IsBreakGlassApprover(*rule, call.principal())) {
    d.reason = absl::StrCat(Bounded(call.principal(), 256),
                            " is not an approver of the policy's breakglass entry '", rule->name,
                            "'");
  } else {
    d.allowed = true;
    d.reason = absl::StrCat("approver under the policy's breakglass entry '", rule->name, "'");
  }
  KW_RETURN_IF_ERROR(call.AuthorizeWith(g.key, g.context, std::move(d)));
  KW_ASSIGN_OR_RETURN(BreakGlassGrant approved,
                      deps_.access->ApproveBreakGlass(g.id, call.principal(), rule->quorum));
  call.set_detail(absl::StrCat(
      "break-glass ", g.id, " approval ", approved.approvals.size(), " of ", approved.quorum,
      approved.activated
          ? absl::StrCat("; ACTIVE until ", absl::FormatTime(approved.expires()), " for ",
                         Bounded(approved.requester, 256))
          : ""));
  ToProto(approved, resp);
  return absl::OkStatus();
}

absl::Status KeyManagementService::GetBreakGlass(Call& call, const v1::BreakGlassIdRequest& req,
                                                 v1::BreakGlassGrant* resp) {
  KW_ASSIGN_OR_RETURN(BreakGlassGrant g, deps_.access->FindBreakGlass(req.id()));
  const auto rule = deps_.access->BreakGlassRuleFor(g.requester, g.key);
  policy::Decision d{false, Link(g), ""};
  if (g.requester == call.principal()) {
    d = {true, Link(g), "the requester"};
  } else if (rule && policy::Policy::IsBreakGlassApprover(*rule, call.principal())) {
    d = {true, Link(g), absl::StrCat("approver under breakglass entry '", rule->name, "'")};
  } else if (deps_.access->DecideScope(call.principal(), "read-audit", "*").allowed) {
    d = {true, Link(g), "may read the audit log"};
  } else {
    d.reason = "only the requester, its approvers and principals with read-audit on every "
               "key may read a break-glass grant";
  }
  KW_RETURN_IF_ERROR(call.AuthorizeWith(g.key, g.context, std::move(d)));
  ToProto(g, resp);
  return absl::OkStatus();
}

absl::Status KeyManagementService::ListBreakGlass(Call& call,
                                                  const v1::ListBreakGlassRequest& req,
                                                  v1::ListBreakGlassResponse* resp) {
  KW_RETURN_IF_ERROR(call.AuthorizeWith(
      "*", {}, {true, "breakglass", "lists only the grants the caller may read"}));
  KW_ASSIGN_OR_RETURN(auto grants, deps_.access->ListBreakGlass(req.include_closed()));
  const bool auditor = deps_.access->DecideScope(call.principal(), "read-audit", "*").allowed;
  size_t shown = 0;
  const size_t max = 1000;  // newest kept
  for (size_t i = grants.size(); i-- > 0 && shown < max;) {
    const BreakGlassGrant& g = grants[i];
    bool may = auditor || g.requester == call.principal();
    if (!may) {
      const auto rule = deps_.access->BreakGlassRuleFor(g.requester, g.key);
      may = rule && policy::Policy::IsBreakGlassApprover(*rule, call.principal());
    }
    if (!may) continue;
    ToProto(g, resp->add_grants());
    ++shown;
  }
  // Oldest first, as every listing.
  std::reverse(resp->mutable_grants()->begin(), resp->mutable_grants()->end());
  call.set_detail(absl::StrCat(shown, " break-glass grants listed"));
  return absl::OkStatus();
}

absl::Status KeyManagementService::RevokeBreakGlass(Call& call,
                                                    const v1::BreakGlassIdRequest& req,
                                                    v1::BreakGlassGrant* resp) {
  KW_ASSIGN_OR_RETURN(BreakGlassGrant g, deps_.access->FindBreakGlass(req.id()));
  const auto rule = deps_.access->BreakGlassRuleFor(g.requester, g.key);
  policy::Decision d{false, Link(g), ""};
  if (g.requester == call.principal()) {
    d = {true, Link(g), "the requester gives it up"};
  } else if (rule && policy::Policy::IsBreakGlassApprover(*rule, call.principal())) {
    d = {true, Link(g), absl::StrCat("approver under breakglass entry '", rule->name, "'")};
  } else if (deps_.access->DecideScope(call.principal(), "manage-grants", g.key).allowed) {
    d = {true, Link(g), "may manage grants on the key"};
  } else {
    d.reason = "only the requester, its approvers and principals with manage-grants on the "
               "key may revoke a break-glass grant";
  }
  KW_RETURN_IF_ERROR(call.AuthorizeWith(g.key, g.context, std::move(d)));
  KW_ASSIGN_OR_RETURN(BreakGlassGrant revoked,
                      deps_.access->RevokeBreakGlass(g.id, call.principal()));
  call.set_detail(absl::StrCat("break-glass ", g.id, " revoked after ", revoked.decrypts,
                               " decrypt(s)"));
  ToProto(revoked, resp);
  return absl::OkStatus();
}

}  // namespace keyward::server
