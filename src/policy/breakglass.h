// Break-glass access: a request by one principal to decrypt under one key,
// for a while and a number of times, that takes effect only once a quorum of
// other principals approved it (docs/incident-response.md).  Who may
// request and approve, and how many approvals it takes, is the policy's
// `breakglass:` section (policy::BreakGlassRule); requests, approvals and
// the decrypt count live in the key store, so that every keywardd replica
// and every restart sees the same grant.
#ifndef KEYWARD_POLICY_BREAKGLASS_H_
#define KEYWARD_POLICY_BREAKGLASS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "keyward/keyring.h"

namespace keyward::policy {

// An entry of the policy's `breakglass:` section.
struct BreakGlassRule {
  std::string name;
  std::vector<std::string> keys;        // globs over key names
  std::vector<std::string> requesters;  // globs over principals
  std::vector<std::string> approvers;   // globs over principals
  int quorum = 0;                       // distinct approvers, the requester never one
  absl::Duration max_duration = absl::Hours(24);
};

struct BreakGlassApproval {
  std::string principal;
  absl::Time time;
};

struct BreakGlassGrant {
  enum class State { kPending, kActive, kExpired, kExhausted, kRevoked, kLapsed };

  std::string id;  // "bg-" and 16 hex digits
  std::string requester;
  std::string key;             // one key name, never a glob
  EncryptionContext context;   // pairs every decrypt under the grant must carry
  std::string reason;
  std::string rule;            // the BreakGlassRule that allowed the request
  int quorum = 0;              // approvals needed
  absl::Duration duration;     // runs from the moment the quorum is reached
  uint64_t max_decrypts = 0;   // 0: no limit but the time
  uint64_t decrypts = 0;       // used so far, counted before each answer
  absl::Time requested;
  absl::Time request_expires;  // a request not approved by then lapses
  std::vector<BreakGlassApproval> approvals;
  std::optional<absl::Time> activated;  // when the quorum was reached
  std::optional<absl::Time> revoked;
  std::string revoked_by;
  // The audit record of its end (expiry, count used up, lapse, revocation)
  // is written; a closed grant is history.
  bool closed = false;

  // When it stops applying (or, while pending, lapses).
  absl::Time expires() const { return activated ? *activated + duration : request_expires; }
  State StateAt(absl::Time now) const;
  bool HasApproved(absl::string_view principal) const;
};

// "pending", "active", "expired", "exhausted", "revoked", "lapsed".
const char* BreakGlassStateName(BreakGlassGrant::State state);

// How long a request waits for its quorum before it lapses.
inline constexpr absl::Duration kBreakGlassRequestLifetime = absl::Hours(24);
// The longest a policy may let a grant last.
inline constexpr absl::Duration kBreakGlassMaxDuration = absl::Hours(24 * 7);

}  // namespace keyward::policy

#endif  // KEYWARD_POLICY_BREAKGLASS_H_
