// Access control: who may do what with which key.
//
// A policy is a list of rules (YAML, docs/policy.md).  Each rule names
// principals and keys (globs: `*` matches any run of characters, `/`
// included), operations, and optional conditions on the request's
// encryption context.  Decisions: an explicit deny wins; otherwise any
// matching allow rule or active grant allows; otherwise deny (default deny).
//
// Thread-safety: a Policy is immutable once built; share it freely.
#ifndef KEYWARD_POLICY_POLICY_H_
#define KEYWARD_POLICY_POLICY_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "keyward/keyring.h"
#include "policy/breakglass.h"
#include "policy/grant.h"

namespace keyward::policy {

// Every operation a rule can name.  Data operations first.
inline constexpr const char* kDataOperations[] = {
    "encrypt", "generate-data-key", "decrypt", "reencrypt", "rewrap", "describe"};
inline constexpr const char* kAdminOperations[] = {
    "create-key",      "list-keys",       "rotate-key",     "update-key",
    "enable-version",  "disable-version", "set-primary",    "destroy-version",
    "cancel-destroy",  "manage-policy",   "manage-grants",  "self-grant",
    "read-audit",      "manage-audit",    "report-data-set", "erase-tenant",
    "compromise-key"};
bool IsKnownOperation(absl::string_view op);

struct Condition {
  enum class Kind { kKeyPresent, kEquals, kEqualsPrincipalSegment };
  Kind kind = Kind::kKeyPresent;
  std::string key;    // context key
  std::string value;  // kEquals
  int segment = 0;    // kEqualsPrincipalSegment: 1-based path segment
};

struct Rule {
  std::string name;
  bool allow = true;  // effect
  std::vector<std::string> principals;
  std::vector<std::string> keys;
  std::vector<std::string> operations;  // names or "*"
  std::vector<Condition> conditions;    // all must hold
};

struct Request {
  std::string principal;
  std::string operation;
  std::string key;  // "*" for operations on no particular key
  const EncryptionContext* context = nullptr;
  absl::Time now;
};

struct Decision {
  bool allowed = false;
  std::string rule;    // the rule or "grant:<id>" that decided; "" = default
  std::string reason;  // one line for errors and `policy test`
};

class Policy {
 public:
  // Parses and checks a policy document.  Errors: kInvalidArgument naming
  // the rule and field.
  static absl::StatusOr<std::shared_ptr<const Policy>> Parse(absl::string_view yaml);
  static absl::StatusOr<std::shared_ptr<const Policy>> Load(const std::string& path);

  Decision Evaluate(const Request& request, const std::vector<Grant>& grants) const;

  // Whether `principal` may do `operation` on every key `pattern` (a glob)
  // can match, with no encryption context: some unconditional allow rule or
  // active grant covers the whole pattern (glob containment, not matching:
  // "g/?" does not cover "g/*"), and no deny rule applies to any key of it.
  // Conservative: when containment cannot be shown the answer is deny.
  Decision EvaluateScope(const std::string& principal, const std::string& operation,
                         const std::string& pattern, const std::vector<Grant>& grants,
                         absl::Time now) const;

  // OK when at least one principal can still be allowed `manage-policy`
  // (some unconditional allow rule for it is not wholly overridden by deny
  // rules); else kInvalidArgument saying so.  A policy that fails this
  // would lock every administrator out for good.
  absl::Status CheckManageable() const;
  const std::vector<Rule>& rules() const { return rules_; }
  const std::vector<BreakGlassRule>& breakglass() const { return breakglass_; }
  // The first `breakglass:` entry that lets `requester` ask for break-glass
  // access to key `key`; nullptr when none does.
  const BreakGlassRule* FindBreakGlassRule(absl::string_view requester,
                                           absl::string_view key) const;
  // Whether `principal` is one of `rule`'s approvers.
  static bool IsBreakGlassApprover(const BreakGlassRule& rule, absl::string_view principal);
  const std::string& source() const { return source_; }

 private:
  static absl::StatusOr<std::shared_ptr<const Policy>> ParseYaml(absl::string_view yaml);
  std::vector<Rule> rules_;
  std::vector<BreakGlassRule> breakglass_;
  std::string source_;
};

// Glob match where `*` matches any characters (including '/') and `?` one.
bool GlobMatch(absl::string_view pattern, absl::string_view text);

// True when every string `inner` matches is matched by `outer` as well
// (language containment of two globs).  Sound: true only when it is so; it
// may answer false for a few equivalent spellings it cannot relate, which
// refuses rather than allows.
bool GlobContains(absl::string_view outer, absl::string_view inner);

// True when some string is matched by both globs.
bool GlobsIntersect(absl::string_view a, absl::string_view b);

// The principal's path segments: "spiffe://example.org/tenant/acme/app" →
// {"tenant", "acme", "app"}; a plain name has none.
std::vector<std::string> PrincipalSegments(absl::string_view principal);

}  // namespace keyward::policy

#endif  // KEYWARD_POLICY_POLICY_H_
