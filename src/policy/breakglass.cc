#include "policy/breakglass.h"

namespace keyward::policy {

BreakGlassGrant::State BreakGlassGrant::StateAt(absl::Time now) const {
  if (revoked) return State::kRevoked;
  if (!activated) return now >= request_expires ? State::kLapsed : State::kPending;
  if (max_decrypts != 0 && decrypts >= max_decrypts) return State::kExhausted;
  if (now >= expires()) return State::kExpired;
  return State::kActive;
}

bool BreakGlassGrant::HasApproved(absl::string_view principal) const {
  for (const BreakGlassApproval& a : approvals) {
    if (a.principal == principal) return true;
  }
  return false;
}

const char* BreakGlassStateName(BreakGlassGrant::State state) {
  switch (state) {
    case BreakGlassGrant::State::kPending: return "pending";
    case BreakGlassGrant::State::kActive: return "active";
    case BreakGlassGrant::State::kExpired: return "expired";
    case BreakGlassGrant::State::kExhausted: return "exhausted";
    case BreakGlassGrant::State::kRevoked: return "revoked";
    case BreakGlassGrant::State::kLapsed: return "lapsed";
  }
  return "unknown";
}

}  // namespace keyward::policy
