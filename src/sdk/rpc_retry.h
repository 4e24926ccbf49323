// Which keywardd RPCs the SDK may send again to another replica after a
// failure that leaves the outcome unknown (docs/sdk.md, "Replicas and
// retries"): one table, one row per method of keyward.v1.KeyManagement.
//
// kSafe: the call changes nothing, or its result is fresh each time and an
// unused one is harmless (a data key nobody stores, a message nobody
// keeps).  It is retried on the next healthy replica after a transport
// failure (UNAVAILABLE, DEADLINE_EXCEEDED) or a server that reports its
// store or audit log unavailable.
//
// kOnlyIfNotSent: the call changes state (keys, versions, policy, grants,
// tenants).  It is sent again only when the failure proves the request
// never left the client (the connection to that replica could not be made
// before sending); any later failure returns ErrorCode kMayHaveBeenApplied
// with `check`, the command that shows whether it was applied.
#ifndef KEYWARD_SDK_RPC_RETRY_H_
#define KEYWARD_SDK_RPC_RETRY_H_

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace keyward::sdk {

enum class RetryClass { kSafe, kOnlyIfNotSent };

struct RpcRetryRule {
  absl::string_view method;  // "CreateKey": the RPC's name in the service
  RetryClass retry;
  absl::string_view why;     // one line, for docs/sdk.md and reviews
  // kOnlyIfNotSent: how to see whether a request of unknown outcome was
  // applied ("keyward key describe NAME").
  absl::string_view check;
};

// Every rule, in the proto's order.
absl::Span<const RpcRetryRule> RpcRetryRules();

// The rule of `method`, or nullptr for a method the table does not know (the
// caller then treats it as kOnlyIfNotSent).
const RpcRetryRule* FindRpcRetryRule(absl::string_view method);

}  // namespace keyward::sdk

#endif  // KEYWARD_SDK_RPC_RETRY_H_
