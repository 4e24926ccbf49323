// keywardd's access control: the policy file (reloaded on SIGHUP, replaced
// through the admin API) and the grants in the key store, answering "may
// this principal do this operation on this key with this context?".
//
// Grants (and a shared policy) are cached in memory and refreshed whenever
// this process changes them, when another replica's change is notified, and
// at least every `grant_refresh` (in case a notification was missed).
//
// Thread-safety: every method is safe to call concurrently; Decide() takes
// no lock that a writer holds for long.
#ifndef KEYWARD_SERVER_ACCESS_CONTROL_H_
#define KEYWARD_SERVER_ACCESS_CONTROL_H_

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "keystore/key_store.h"
#include "policy/policy.h"

namespace keyward::server {

struct GrantRequest {
  std::string principal;
  std::string key;  // name or glob
  std::vector<std::string> operations;
  EncryptionContext context;
  absl::Duration ttl;
  std::string reason;
};

// A break-glass request (docs/incident-response.md), as the requester made it.
struct BreakGlassRequest {
  std::string requester;
  std::string key;  // one key name
  EncryptionContext context;
  std::string reason;
  absl::Duration duration;
  uint64_t max_decrypts = 0;  // 0: no count limit
};

// A change of the policy in force, for its audit record.
struct PolicyChange {
  std::string old_digest;  // "sha256:<hex>" of the policy text
  std::string new_digest;
};

// Where replicas sharing a store keep the policy in force (keywardd seals
// it with the HSM root key, so that whoever can write the database cannot
// forge it).  With one, the shared policy wins over the file at start (the
// file only seeds a store that has none), every change (SetPolicy, a reload
// of the file) is published there before it takes effect, and
// OnSharedPolicyChange takes up another replica's change.
struct SharedPolicy {
  std::function<absl::StatusOr<std::optional<std::string>>()> load;
  std::function<absl::Status(const std::string& yaml)> publish;
};

class AccessControl {
 public:
  // Loads the policy at `policy_path` (or `shared`'s, see SharedPolicy) and
  // the active grants.  Errors: as SetPolicy, for the file.
  static absl::StatusOr<std::unique_ptr<AccessControl>> Open(
      std::string policy_path, keystore::KeyStore* store,
      std::optional<SharedPolicy> shared = std::nullopt);

  // Another replica changed the shared policy: loads and uses it.  Returns
  // the change (old == new when it was already in force).  Errors: the
  // store's; kInvalidArgument for a policy that does not parse (the one in
  // force stays).
  absl::StatusOr<PolicyChange> OnSharedPolicyChange();
  // Another replica created or revoked a grant: re-reads the grants.
  absl::Status OnGrantsChange();

  // The policy's decision, with the grants.  A `decrypt` no rule or grant
  // allows (a deny rule included) is allowed under an active break-glass
  // grant of the caller's on that key whose context pairs the request
  // carries, while the policy still has a `breakglass:` entry for it; with
  // `count_breakglass` that use is counted in the key store first, in one
  // transaction that refuses a grant revoked, expired or used up by then
  // (other replicas included).  Without it (policy test) nothing changes.
  policy::Decision Decide(const policy::Request& request, bool count_breakglass = false);
  // Policy::EvaluateScope with the grants in force.
  policy::Decision DecideScope(const std::string& principal, const std::string& operation,
                               const std::string& pattern);

  // Re-reads the policy file.  `record` runs before the new policy takes
  // effect (keywardd writes the audit record there); if it fails, or the
  // file is not a valid policy, the policy in force stays.  Reloads and
  // SetPolicy take one lock, so neither loses the other's change.
  absl::StatusOr<PolicyChange> ReloadPolicy(
      const std::function<absl::Status(const PolicyChange&)>& record);
  // Checks `yaml` (it parses, and some principal can still manage the
  // policy), runs `record` (as for ReloadPolicy), writes it over the policy
  // file (atomically), and uses it.  Errors: kInvalidArgument naming the
  // rule and field, or `record`'s; the file and the policy in force are
  // unchanged.
  absl::StatusOr<PolicyChange> SetPolicy(
      absl::string_view yaml, const std::function<absl::Status(const PolicyChange&)>& record);
  std::string PolicyText() const;
  // "sha256:<hex>" of the policy in force.
  std::string PolicyDigest() const;

  // Grants.  Errors: kInvalidArgument (unknown operation, empty principal,
  // a key glob with bytes no key name holds, ttl outside 1 second..90
  // days), kNotFound, kFailedPrecondition (revoked).  Whether the creator
  // may grant on the glob (DecideScope) is the caller's to check first.
  absl::StatusOr<policy::Grant> CreateGrant(const GrantRequest& request,
                                            const std::string& created_by);
  absl::StatusOr<std::vector<policy::Grant>> ListGrants(bool include_inactive);
  absl::StatusOr<policy::Grant> RevokeGrant(const std::string& id);
  absl::StatusOr<policy::Grant> FindGrant(const std::string& id);

  static constexpr absl::Duration kMaxGrantTtl = absl::Hours(24 * 90);

  // --- Break-glass grants (policy/breakglass.h).  Who may request,
  // approve and revoke is the caller's to decide first, with
  // BreakGlassRuleFor and policy::Policy::IsBreakGlassApprover.

  // A copy of the policy's `breakglass:` entry that lets `requester` ask
  // for access to `key`; nullopt when none does.
  std::optional<policy::BreakGlassRule> BreakGlassRuleFor(const std::string& requester,
                                                          const std::string& key) const;
  // A fresh grant id ("bg-" and 16 hex digits).
  static absl::StatusOr<std::string> NewBreakGlassId();
  // Stores a pending request under `id`.  Errors: kInvalidArgument (no
  // reason, a duration outside 1 second..the rule's max_duration).
  absl::StatusOr<policy::BreakGlassGrant> RequestBreakGlass(const std::string& id,
                                                            const BreakGlassRequest& request,
                                                            const policy::BreakGlassRule& rule);
  // Adds `approver`'s approval; the grant becomes active when the approvals
  // reach the larger of its quorum and `quorum` (the policy's now).
  // Errors: kNotFound; kPermissionDenied for the requester;
  // kAlreadyExists when `approver` approved it already;
  // kFailedPrecondition when it is no longer pending.
  absl::StatusOr<policy::BreakGlassGrant> ApproveBreakGlass(const std::string& id,
                                                            const std::string& approver,
                                                            int quorum);
  // Ends it now, on every replica (the count is checked in the store).
  // Errors: kNotFound; kFailedPrecondition when it already ended.
  absl::StatusOr<policy::BreakGlassGrant> RevokeBreakGlass(const std::string& id,
                                                           const std::string& by);
  absl::StatusOr<policy::BreakGlassGrant> FindBreakGlass(const std::string& id);
  absl::StatusOr<std::vector<policy::BreakGlassGrant>> ListBreakGlass(bool include_closed);
  // Re-reads the grants and closes each that ended by itself (expired, used
  // up, lapsed unapproved) after `record` wrote its audit record; a grant
  // whose record fails stays open and is tried again next time.  Safe to
  // run on several replicas at once: each grant is closed by one of them.
  absl::Status SweepBreakGlass(
      const std::function<absl::Status(const policy::BreakGlassGrant&)>& record);
  // Active break-glass grants now (for /metrics).
  int ActiveBreakGlassGrants() const;

 private:
  AccessControl(std::string path, keystore::KeyStore* store, std::optional<SharedPolicy> shared)
      : path_(std::move(path)), store_(store), shared_(std::move(shared)) {}
  absl::Status RefreshGrants();
  policy::Decision DecideBreakGlass(const policy::Policy& policy,
                                    const std::vector<policy::BreakGlassGrant>& grants,
                                    const policy::Request& request, policy::Decision denied,
                                    bool count);
  // Loads the shared policy and uses it if it differs.  Needs write_mu_.
  absl::StatusOr<PolicyChange> TakeSharedPolicy();

  const std::string path_;
  keystore::KeyStore* const store_;
  const std::optional<SharedPolicy> shared_;
  mutable std::mutex mu_;
  std::shared_ptr<const policy::Policy> policy_;                    // GUARDED_BY(mu_)
  std::shared_ptr<const std::vector<policy::Grant>> grants_;        // GUARDED_BY(mu_)
  // Break-glass grants not closed.
  std::shared_ptr<const std::vector<policy::BreakGlassGrant>> breakglass_;  // GUARDED_BY(mu_)
  absl::Time grants_loaded_;                                        // GUARDED_BY(mu_)
  std::mutex write_mu_;  // serializes SetPolicy and grant changes
};

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_ACCESS_CONTROL_H_
