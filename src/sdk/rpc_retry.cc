#include "sdk/rpc_retry.h"

namespace keyward::sdk {
namespace {

constexpr RetryClass kSafe = RetryClass::kSafe;
constexpr RetryClass kOnce = RetryClass::kOnlyIfNotSent;
constexpr absl::string_view kDescribe = "`keyward key describe NAME`";
constexpr absl::string_view kGrants = "`keyward grant list`";

// docs/sdk.md shows this table; keep the two in step.
constexpr RpcRetryRule kRules[] = {
    {"GetServerInfo", kSafe, "read", ""},
    {"CreateKey", kOnce, "creates a key; sent twice, the second fails as already existing",
     kDescribe},
    {"GetKey", kSafe, "read", ""},
    {"ListKeys", kSafe, "read", ""},
    {"RotateKey", kOnce, "adds a version each time it is applied", kDescribe},
    {"UpdateKey", kOnce, "changes a key's settings; another admin's change may lie between",
     kDescribe},
    {"EnableVersion", kOnce, "changes a version's state", kDescribe},
    {"DisableVersion", kOnce, "changes a version's state", kDescribe},
    {"SetPrimaryVersion", kOnce, "changes which version encrypts", kDescribe},
    {"ScheduleVersionDestruction", kOnce, "starts the destruction clock of a version",
     kDescribe},
    {"CancelVersionDestruction", kOnce, "changes a version's state", kDescribe},
    {"CompromiseVersion", kSafe,
     "idempotent: declaring a version compromised again changes nothing", ""},
    {"GenerateDataKey", kSafe, "a fresh data key each time; an unused one is harmless", ""},
    {"GenerateDataKeyWithoutPlaintext", kSafe,
     "a fresh wrapped data key each time; an unused one is harmless", ""},
    {"DecryptDataKey", kSafe, "unwraps; changes nothing", ""},
    {"ReWrapDataKey", kSafe, "a new wrapping of the same data key; the old one stays valid", ""},
    {"BatchGenerateDataKeys", kSafe, "fresh data keys; unused ones are harmless", ""},
    {"BatchDecryptDataKeys", kSafe, "unwraps; changes nothing", ""},
    {"Encrypt", kSafe, "a new message of at most 64 KiB; an unused one is harmless", ""},
    {"Decrypt", kSafe, "opens a message; changes nothing", ""},
    {"RewrapMessageHeader", kSafe, "a new header for the caller to store; changes nothing", ""},
    {"BatchRewrapMessageHeaders", kSafe, "new headers for the caller to store; changes nothing",
     ""},
    {"ReportDataSet", kSafe,
     "replaces the data set's report with the same one: applying it twice is applying it once",
     ""},
    {"ListDataSets", kSafe, "read", ""},
    {"GetDrillSamples", kSafe, "read", ""},
    {"EraseTenant", kOnce, "irreversible; a dry run only reads but shares the method",
     "`keyward tenant erase ... --dry-run`"},
    {"GetPolicy", kSafe, "read", ""},
    {"SetPolicy", kOnce, "replaces the policy; another admin's change may lie between",
     "`keyward policy get`"},
    {"TestPolicy", kSafe, "a dry run of a decision; changes nothing", ""},
    {"CreateGrant", kOnce, "each call adds a grant", kGrants},
    {"ListGrants", kSafe, "read", ""},
    {"RevokeGrant", kOnce, "changes a grant", kGrants},
    {"GetAuditCheckpoint", kSafe, "read", ""},
    {"GetInclusionProof", kSafe, "read", ""},
    {"GetConsistencyProof", kSafe, "read", ""},
    {"ReadAuditRecords", kSafe, "read", ""},
    {"ListAuditSegments", kSafe, "read", ""},
    {"RequestBreakGlass", kOnce, "each call files a request", "`keyward breakglass list`"},
    {"ApproveBreakGlass", kOnce, "adds an approval; a second one by the same approver is refused",
     "`keyward breakglass show ID`"},
    {"GetBreakGlass", kSafe, "read", ""},
    {"ListBreakGlass", kSafe, "read", ""},
    {"RevokeBreakGlass", kOnce, "ends a grant", "`keyward breakglass show ID`"},
    {"PruneAuditLog", kOnce, "removes segments; a second call finds them gone",
     "`keyward audit segments`"},
};

}  // namespace

absl::Span<const RpcRetryRule> RpcRetryRules() { return kRules; }

const RpcRetryRule* FindRpcRetryRule(absl::string_view method) {
  for (const RpcRetryRule& rule : kRules) {
    if (rule.method == method) return &rule;
  }
  return nullptr;
}

}  // namespace keyward::sdk
