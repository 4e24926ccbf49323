#include "policy/lint.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace keyward::policy {
namespace {

bool HasOperation(const Rule& r, absl::string_view op) {
  return std::any_of(r.operations.begin(), r.operations.end(),
                     [&](const std::string& o) { return o == "*" || o == op; });
}

// True when some glob of `outer` contains every glob of `inner`, for each.
bool Covers(const std::vector<std::string>& outer, const std::vector<std::string>& inner) {
  return std::all_of(inner.begin(), inner.end(), [&](const std::string& in) {
    return std::any_of(outer.begin(), outer.end(),
                       [&](const std::string& out) { return GlobContains(out, in); });
  });
}

bool Everything(const std::vector<std::string>& globs) { return Covers(globs, {"*"}); }

// Two conditions that no context can meet together: one key equal to two
// different values.
bool Contradicts(const Rule& r) {
  std::map<std::string, std::string> equals;
  for (const Condition& c : r.conditions) {
    if (c.kind != Condition::Kind::kEquals) continue;
    auto [it, inserted] = equals.emplace(c.key, c.value);
    if (!inserted && it->second != c.value) return true;
  }
  return false;
}

// The deny rule that overrides all of `allow`, if one does: unconditional,
// covering its principals, keys and operations.
const Rule* OverriddenBy(const Rule& allow, const std::vector<Rule>& rules) {
  for (const Rule& d : rules) {
    if (d.allow || !d.conditions.empty()) continue;
    if (!Covers(d.principals, allow.principals) || !Covers(d.keys, allow.keys)) continue;
    const bool ops = std::all_of(allow.operations.begin(), allow.operations.end(),
                                 [&](const std::string& op) {
                                   return op == "*" ? HasOperation(d, "*") : HasOperation(d, op);
                                 });
    if (ops) return &d;
  }
  return nullptr;
}

}  // namespace

std::vector<LintFinding> LintPolicy(const Policy& policy,
                                    const std::vector<std::string>& principals) {
  using Severity = LintFinding::Severity;
  std::vector<LintFinding> out;
  const std::vector<Rule>& rules = policy.rules();
  for (const Rule& r : rules) {
    if (!r.allow) continue;
    if (r.conditions.empty() && Everything(r.principals) && Everything(r.keys) &&
        HasOperation(r, "decrypt")) {
      out.push_back({Severity::kFailure, "decrypt-everything", r.name,
                     absl::StrCat("rule '", r.name,
                                  "' lets every principal decrypt every key"),
                     "name the principals and keys it is for (docs/policy.md); an "
                     "investigator's access belongs in a time-bound grant"});
    }
    if (const Rule* d = OverriddenBy(r, rules); d != nullptr) {
      out.push_back({Severity::kWarning, "rule-never-matches", r.name,
                     absl::StrCat("rule '", r.name, "' never allows anything: deny rule '",
                                  d->name, "' covers all it allows (an explicit deny wins)"),
                     "remove one of the two, or narrow the deny rule"});
    } else if (Contradicts(r)) {
      out.push_back({Severity::kWarning, "rule-never-matches", r.name,
                     absl::StrCat("rule '", r.name,
                                  "' never matches: its conditions require one context key "
                                  "to hold two different values"),
                     "fix the rule's conditions"});
    }
    if (std::find(r.operations.begin(), r.operations.end(), "self-grant") != r.operations.end()) {
      out.push_back({Severity::kWarning, "break-glass-without-quorum", r.name,
                     absl::StrCat("rule '", r.name, "' gives ",
                                  absl::StrJoin(r.principals, ", "),
                                  " self-grant: access to its keys without anyone's approval"),
                     "use break-glass grants with a quorum of at least 2 approvers for "
                     "emergency access, and drop self-grant"});
    }
  }
  // A break-glass entry one approver can open alone: no second pair of eyes.
  for (const BreakGlassRule& b : policy.breakglass()) {
    if (b.quorum < 2) {
      out.push_back({Severity::kWarning, "break-glass-without-quorum", b.name,
                     absl::StrCat("break-glass entry '", b.name, "' needs ", b.quorum,
                                  " approval: one approver (", absl::StrJoin(b.approvers, ", "),
                                  ") can open emergency access to ",
                                  absl::StrJoin(b.keys, ", "), " alone"),
                     "set quorum to at least 2 and name at least 2 approvers"});
    }
  }
  for (const std::string& p : principals) {
    const bool named = std::any_of(rules.begin(), rules.end(), [&](const Rule& r) {
      return r.allow && std::any_of(r.principals.begin(), r.principals.end(),
                                    [&](const std::string& g) { return GlobMatch(g, p); });
    });
    if (!named) {
      out.push_back({Severity::kWarning, "principal-without-rule", "",
                     absl::StrCat("principal ", p,
                                  " calls keywardd but no allow rule names it: every call it "
                                  "makes is refused unless a grant covers it"),
                     "add a rule for it, or retire its certificate"});
    }
  }
  return out;
}

}  // namespace keyward::policy
