// Break-glass grants in keywardd's access control (server/access_control.h):
// requests, approvals, revocation, the counted use in a decision, and
// closing the grants that ended by themselves.
#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/bounded.h"
#include "base/duration.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "crypto/random.h"
#include "server/access_control.h"

namespace keyward::server {
namespace {

using State = policy::BreakGlassGrant::State;

bool Carries(const EncryptionContext* context, const EncryptionContext& required) {
  for (const auto& [k, v] : required) {
    if (context == nullptr) return false;
    auto it = context->find(k);
    if (it == context->end() || it->second != v) return false;
  }
  return true;
}

std::string Uses(const policy::BreakGlassGrant& g) {
  return g.max_decrypts == 0 ? absl::StrCat(g.decrypts, " decrypts, no count limit")
                             : absl::StrCat(g.decrypts, " of ", g.max_decrypts, " decrypts");
}

absl::Time Now() { return absl::FromUnixMicros(absl::ToUnixMicros(absl::Now())); }

}  // namespace

policy::Decision AccessControl::DecideBreakGlass(
    const policy::Policy& policy, const std::vector<policy::BreakGlassGrant>& grants,
    const policy::Request& r, policy::Decision denied, bool count) {
  std::optional<policy::Decision> refused;
  for (const policy::BreakGlassGrant& g : grants) {
    if (g.requester != r.principal || g.key != r.key || !Carries(r.context, g.context)) continue;
    const std::string rule = absl::StrCat("breakglass:", g.id);
    if (policy.FindBreakGlassRule(g.requester, g.key) == nullptr) {
      refused = policy::Decision{false, rule,
                                 absl::StrCat(denied.reason, "; break-glass grant ", g.id,
                                              " no longer applies: the policy has no "
                                              "breakglass entry for it any more")};
      continue;
    }
    if (!count) {
      if (g.StateAt(r.now) == State::kActive) {
        return policy::Decision{true, rule, absl::StrCat("allowed by break-glass grant ", g.id)};
      }
      continue;
    }
    // Counted before the answer, in one transaction: a grant revoked on
    // another replica, expired or used up is refused here, whatever this
    // process's cache says.
    auto counted = store_->UpdateBreakGlass(g.id, [&](policy::BreakGlassGrant& s) {
      const State state = s.StateAt(r.now);
      if (state != State::kActive) {
        return absl::FailedPreconditionError(absl::StrCat(
            "break-glass grant ", s.id, " is ", policy::BreakGlassStateName(state),
            state == State::kExhausted ? absl::StrCat(" (", Uses(s), ")") : ""));
      }
      ++s.decrypts;
      return absl::OkStatus();
    });
    if (counted.ok()) {
      Log(LogLevel::kWarning, "breakglass", "decrypt under a break-glass grant",
          {{"grant", g.id},
           {"principal", g.requester},
           {"key", g.key},
           {"used", Uses(*counted)},
           {"expires", absl::FormatTime(counted->expires())}});
      return policy::Decision{
          true, rule, absl::StrCat("allowed by break-glass grant ", g.id, " (", Uses(*counted), ")")};
    }
    refused = policy::Decision{false, rule,
                               absl::StrCat(denied.reason, "; ", counted.status().message())};
  }
  if (refused) return *refused;
  return denied;
}

std::optional<policy::BreakGlassRule> AccessControl::BreakGlassRuleFor(
    const std::string& requester, const std::string& key) const {
  std::shared_ptr<const policy::Policy> policy;
  {
    std::lock_guard<std::mutex> lock(mu_);
    policy = policy_;
  }
  const policy::BreakGlassRule* rule = policy->FindBreakGlassRule(requester, key);
  if (rule == nullptr) return std::nullopt;
  return *rule;
}

absl::StatusOr<std::string> AccessControl::NewBreakGlassId() {
  KW_ASSIGN_OR_RETURN(std::string id_bytes, crypto::RandomBytes(8));
  return absl::StrCat("bg-", absl::BytesToHexString(id_bytes));
}

absl::StatusOr<policy::BreakGlassGrant> AccessControl::RequestBreakGlass(
    const std::string& id, const BreakGlassRequest& r, const policy::BreakGlassRule& rule) {
  if (r.reason.empty()) {
    return absl::InvalidArgumentError(
        "a break-glass request needs a reason (--reason): the approvers and the "
        "post-incident review read it");
  }
  if (r.duration < absl::Seconds(1) || r.duration > rule.max_duration) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a break-glass grant lasts between 1s and ", FormatHumanDuration(rule.max_duration),
        " (the max_duration of the policy's breakglass entry '", Bounded(rule.name), "')"));
  }
  policy::BreakGlassGrant g;
  g.id = id;
  g.requester = r.requester;
  g.key = r.key;
  g.context = r.context;
  g.reason = r.reason;
  g.rule = rule.name;
  g.quorum = rule.quorum;
  g.duration = r.duration;
  g.max_decrypts = r.max_decrypts;
  g.requested = Now();
  g.request_expires = g.requested + policy::kBreakGlassRequestLifetime;
  std::lock_guard<std::mutex> write(write_mu_);
  KW_RETURN_IF_ERROR(store_->CreateBreakGlass(g));
  KW_RETURN_IF_ERROR(RefreshGrants());
  return g;
}

absl::StatusOr<policy::BreakGlassGrant> AccessControl::ApproveBreakGlass(
    const std::string& id, const std::string& approver, int quorum) {
  const absl::Time now = Now();
  std::lock_guard<std::mutex> write(write_mu_);
  KW_ASSIGN_OR_RETURN(
      policy::BreakGlassGrant g,
      store_->UpdateBreakGlass(id, [&](policy::BreakGlassGrant& s) -> absl::Status {
        if (s.requester == approver) {
          return absl::PermissionDeniedError(
              "you requested this break-glass grant; the requester never counts towards "
              "its quorum, the approvals must come from others");
        }
        const State state = s.StateAt(now);
        if (state != State::kPending) {
          return absl::FailedPreconditionError(absl::StrCat(
              "break-glass request ", s.id, " is ", policy::BreakGlassStateName(state),
              ", not pending; nothing to approve"));
        }
        if (s.HasApproved(approver)) {
          return absl::AlreadyExistsError(absl::StrCat(
              "you already approved break-glass request ", s.id, "; it needs ",
              std::max(s.quorum, quorum) - static_cast<int>(s.approvals.size()),
              " more approval(s) from other approvers"));
        }
        s.approvals.push_back({approver, now});
        s.quorum = std::max(s.quorum, quorum);
        if (static_cast<int>(s.approvals.size()) >= s.quorum) s.activated = now;
        return absl::OkStatus();
      }));
  KW_RETURN_IF_ERROR(RefreshGrants());
  if (g.activated) {
    Log(LogLevel::kWarning, "breakglass", "break-glass grant ACTIVE",
        {{"grant", g.id},
         {"principal", g.requester},
         {"key", g.key},
         {"expires", absl::FormatTime(g.expires())},
         {"max_decrypts", absl::StrCat(g.max_decrypts)}});
  }
  return g;
}

absl::StatusOr<policy::BreakGlassGrant> AccessControl::RevokeBreakGlass(const std::string& id,
                                                                        const std::string& by) {
  const absl::Time now = Now();
  std::lock_guard<std::mutex> write(write_mu_);
  KW_ASSIGN_OR_RETURN(
      policy::BreakGlassGrant g,
      store_->UpdateBreakGlass(id, [&](policy::BreakGlassGrant& s) -> absl::Status {
        const State state = s.StateAt(now);
        if (state != State::kPending && state != State::kActive) {
          return absl::FailedPreconditionError(absl::StrCat(
              "break-glass grant ", s.id, " is already ", policy::BreakGlassStateName(state)));
        }
        s.revoked = now;
        s.revoked_by = by;
        // The revocation's own audit record is the record of its end.
        s.closed = true;
        return absl::OkStatus();
      }));
  KW_RETURN_IF_ERROR(RefreshGrants());
  Log(LogLevel::kWarning, "breakglass", "break-glass grant revoked",
      {{"grant", g.id}, {"by", by}, {"used", Uses(g)}});
  return g;
}

absl::StatusOr<policy::BreakGlassGrant> AccessControl::FindBreakGlass(const std::string& id) {
  KW_ASSIGN_OR_RETURN(auto all, store_->ListBreakGlass(/*include_closed=*/true));
  for (policy::BreakGlassGrant& g : all) {
    if (g.id == id) return std::move(g);
  }
  return absl::NotFoundError(absl::StrCat("no break-glass grant '", Bounded(id, 64),
                                          "' (list them with `keyward breakglass list --all`)"));
}

absl::StatusOr<std::vector<policy::BreakGlassGrant>> AccessControl::ListBreakGlass(
    bool include_closed) {
  return store_->ListBreakGlass(include_closed);
}

absl::Status AccessControl::SweepBreakGlass(
    const std::function<absl::Status(const policy::BreakGlassGrant&)>& record) {
  std::shared_ptr<const std::vector<policy::BreakGlassGrant>> open;
  {
    std::lock_guard<std::mutex> write(write_mu_);
    KW_RETURN_IF_ERROR(RefreshGrants());
    std::lock_guard<std::mutex> lock(mu_);
    open = breakglass_;
  }
  const absl::Time now = Now();
  absl::Status first_error;
  bool closed_any = false;
  for (const policy::BreakGlassGrant& g : *open) {
    const State state = g.StateAt(now);
    if (state == State::kPending || state == State::kActive) continue;
    // Claimed in the store first, so that of several replicas one writes
    // the record; given back if the record cannot be written.
    auto claimed = store_->UpdateBreakGlass(g.id, [&](policy::BreakGlassGrant& s) {
      const State st = s.StateAt(now);
      if (s.closed || st == State::kPending || st == State::kActive) {
        return absl::AlreadyExistsError("closed or still open");
      }
      s.closed = true;
      return absl::OkStatus();
    });
    if (!claimed.ok()) continue;
    closed_any = true;
    if (absl::Status s = record(*claimed); !s.ok()) {
      (void)store_->UpdateBreakGlass(g.id, [](policy::BreakGlassGrant& s2) {
        s2.closed = false;
        return absl::OkStatus();
      });
      if (first_error.ok()) first_error = s;
      continue;
    }
    Log(LogLevel::kInfo, "breakglass", "break-glass grant ended",
        {{"grant", g.id},
         {"state", policy::BreakGlassStateName(claimed->StateAt(now))},
         {"used", Uses(*claimed)}});
  }
  if (closed_any) {
    std::lock_guard<std::mutex> write(write_mu_);
    KW_RETURN_IF_ERROR(RefreshGrants());
  }
  return first_error;
}

int AccessControl::ActiveBreakGlassGrants() const {
  std::shared_ptr<const std::vector<policy::BreakGlassGrant>> open;
  {
    std::lock_guard<std::mutex> lock(mu_);
    open = breakglass_;
  }
  const absl::Time now = absl::Now();
  int n = 0;
  for (const auto& g : *open) {
    if (g.StateAt(now) == State::kActive) ++n;
  }
  return n;
}

}  // namespace keyward::server
