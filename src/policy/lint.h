// Lint of an access policy: rules that are legal but almost certainly not
// what their author meant (`keyward doctor`, docs/cli.md).
//
// Thread-safety: pure functions.
#ifndef KEYWARD_POLICY_LINT_H_
#define KEYWARD_POLICY_LINT_H_

#include <string>
#include <vector>

#include "policy/policy.h"

namespace keyward::policy {

struct LintFinding {
  enum class Severity { kWarning, kFailure };
  Severity severity = Severity::kWarning;
  std::string check;    // "decrypt-everything", "principal-without-rule",
                        // "rule-never-matches", "break-glass-without-quorum"
  std::string rule;     // the rule concerned ("" for a principal)
  std::string problem;  // one line: what is wrong
  std::string fix;      // one line: what to do
};

// Every finding, rules in policy order:
//   - decrypt-everything (failure): an unconditional allow rule that lets
//     every principal decrypt (or do everything) on every key;
//   - principal-without-rule (warning): a principal of `principals` (those
//     known to call keywardd, e.g. from the audit log) that no allow rule
//     names, so every call it makes is refused unless a grant covers it;
//   - rule-never-matches (warning): an allow rule that unconditional deny
//     rules override entirely, or whose conditions contradict each other;
//   - break-glass-without-quorum (warning): a standing path to access that
//     needs nobody's approval — a rule that gives `self-grant` explicitly,
//     so its principals can grant themselves any operation the rule's keys
//     allow without a second person.
std::vector<LintFinding> LintPolicy(const Policy& policy,
                                    const std::vector<std::string>& principals);

}  // namespace keyward::policy

#endif  // KEYWARD_POLICY_LINT_H_
