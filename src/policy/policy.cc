#include "policy/policy.h"

#include <fstream>
#include <vector>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/bounded.h"
#include "base/duration.h"
#include "base/status_macros.h"
#include "yaml-cpp/yaml.h"

namespace keyward::policy {
namespace {

absl::Status RuleError(size_t index, const std::string& name, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      "policy rule ", index + 1, name.empty() ? "" : absl::StrCat(" (", Bounded(name), ")"),
      ": ", what));
}

absl::StatusOr<std::vector<std::string>> StringList(const YAML::Node& n, size_t i,
                                                    const std::string& name,
                                                    const char* field, bool required) {
  std::vector<std::string> out;
  if (!n) {
    if (required) return RuleError(i, name, absl::StrCat(field, " is required"));
    return out;
  }
  // A list, always: `principals: admin` is refused rather than read as a
  // one-element list, so a typo in the shape of a field never widens a rule.
  if (!n.IsSequence()) {
    return RuleError(i, name, absl::StrCat(field, " must be a list of strings, like [\"a\", \"b\"]"));
  }
  for (const auto& v : n) {
    if (!v.IsScalar()) return RuleError(i, name, absl::StrCat(field, " must list strings"));
    out.push_back(v.as<std::string>());
  }
  if (required && out.empty()) return RuleError(i, name, absl::StrCat(field, " is empty"));
  return out;
}

bool Matches(const std::vector<std::string>& patterns, absl::string_view value) {
  for (const std::string& p : patterns) {
    if (GlobMatch(p, value)) return true;
  }
  return false;
}

bool OperationMatches(const std::vector<std::string>& ops, absl::string_view op) {
  for (const std::string& o : ops) {
    if (o == "*" || o == op) return true;
  }
  return false;
}

// Empty string when every condition holds, else why not.
std::string CheckConditions(const std::vector<Condition>& conditions,
                            const Request& r) {
  static const EncryptionContext kEmpty;
  const EncryptionContext& ctx = r.context ? *r.context : kEmpty;
  for (const Condition& c : conditions) {
    auto it = ctx.find(c.key);
    switch (c.kind) {
      case Condition::Kind::kKeyPresent:
        if (it == ctx.end()) return absl::StrCat("context key '", c.key, "' is missing");
        break;
      case Condition::Kind::kEquals:
        // Never the expected value: a denial must not tell the caller what
        // to send.
        if (it == ctx.end() || it->second != c.value) {
          return absl::StrCat("context '", c.key, "' does not have the value the rule requires");
        }
        break;
      case Condition::Kind::kEqualsPrincipalSegment: {
        const auto segments = PrincipalSegments(r.principal);
        if (c.segment < 1 || static_cast<size_t>(c.segment) > segments.size()) {
          return absl::StrCat("the principal has no path segment ", c.segment);
        }
        if (it == ctx.end() || it->second != segments[c.segment - 1]) {
          return absl::StrCat("context '", c.key,
                              "' does not equal segment ", c.segment,
                              " of the caller's identity");
        }
        break;
      }
    }
  }
  return "";
}

absl::Status BreakGlassError(size_t index, const std::string& name, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      "policy breakglass entry ", index + 1,
      name.empty() ? "" : absl::StrCat(" (", Bounded(name), ")"), ": ", what));
}

absl::StatusOr<std::vector<std::string>> BreakGlassList(const YAML::Node& n, size_t i,
                                                        const std::string& name,
                                                        const char* field) {
  if (!n || !n.IsSequence() || n.size() == 0) {
    return BreakGlassError(i, name, absl::StrCat(field, " must be a list of strings, not empty"));
  }
  std::vector<std::string> out;
  for (const auto& v : n) {
    if (!v.IsScalar() || v.as<std::string>().empty()) {
      return BreakGlassError(i, name, absl::StrCat(field, " must list strings"));
    }
    out.push_back(v.as<std::string>());
  }
  return out;
}

// The `breakglass:` section: who may ask for emergency decrypt access to
// which keys, who approves, how many approvals it takes.
absl::StatusOr<std::vector<BreakGlassRule>> ParseBreakGlass(const YAML::Node& section) {
  if (!section.IsSequence()) {
    return absl::InvalidArgumentError("policy: `breakglass:` must be a list");
  }
  std::vector<BreakGlassRule> out;
  for (size_t i = 0; i < section.size(); ++i) {
    const YAML::Node n = section[i];
    if (!n.IsMap()) return BreakGlassError(i, "", "must be a mapping");
    BreakGlassRule r;
    if (!n["name"] || !n["name"].IsScalar() || n["name"].as<std::string>().empty()) {
      return BreakGlassError(i, "", "name is required");
    }
    r.name = n["name"].as<std::string>();
    for (const auto& kv : n) {
      const std::string k = kv.first.as<std::string>();
      if (k != "name" && k != "keys" && k != "requesters" && k != "approvers" &&
          k != "quorum" && k != "max_duration") {
        return BreakGlassError(i, r.name, absl::StrCat("unknown field '", Bounded(k), "'"));
      }
    }
    KW_ASSIGN_OR_RETURN(r.keys, BreakGlassList(n["keys"], i, r.name, "keys"));
    KW_ASSIGN_OR_RETURN(r.requesters, BreakGlassList(n["requesters"], i, r.name, "requesters"));
    KW_ASSIGN_OR_RETURN(r.approvers, BreakGlassList(n["approvers"], i, r.name, "approvers"));
    if (!n["quorum"] || !n["quorum"].IsScalar()) {
      return BreakGlassError(i, r.name,
                             "quorum is required: how many distinct approvers (at least 1, "
                             "the requester never counts)");
    }
    try {
      r.quorum = n["quorum"].as<int>();
    } catch (const YAML::Exception&) {
      return BreakGlassError(i, r.name, "quorum must be a whole number");
    }
    if (r.quorum < 1 || r.quorum > 16) {
      return BreakGlassError(i, r.name, "quorum must be between 1 and 16");
    }
    // With approvers named one by one (no globs), a quorum larger than
    // their number could never be met.
    bool literal = true;
    for (const std::string& a : r.approvers) {
      if (a.find_first_of("*?") != std::string::npos) literal = false;
    }
    if (literal && static_cast<size_t>(r.quorum) > r.approvers.size()) {
      return BreakGlassError(i, r.name,
                             absl::StrCat("quorum ", r.quorum, " but only ", r.approvers.size(),
                                          " approvers are named; no request could ever be "
                                          "approved"));
    }
    if (const YAML::Node d = n["max_duration"]) {
      if (!d.IsScalar()) return BreakGlassError(i, r.name, "max_duration is a duration like 8h");
      auto parsed = ParseHumanDuration(d.as<std::string>());
      if (!parsed.ok()) return BreakGlassError(i, r.name, parsed.status().message());
      if (*parsed < absl::Seconds(1) || *parsed > kBreakGlassMaxDuration) {
        return BreakGlassError(i, r.name, "max_duration must be between 1s and 7d");
      }
      r.max_duration = *parsed;
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

const BreakGlassRule* Policy::FindBreakGlassRule(absl::string_view requester,
                                                 absl::string_view key) const {
  for (const BreakGlassRule& r : breakglass_) {
    if (Matches(r.requesters, requester) && Matches(r.keys, key)) return &r;
  }
  return nullptr;
}

bool Policy::IsBreakGlassApprover(const BreakGlassRule& rule, absl::string_view principal) {
  return Matches(rule.approvers, principal);
}

bool IsKnownOperation(absl::string_view op) {
  for (const char* o : kDataOperations) if (op == o) return true;
  for (const char* o : kAdminOperations) if (op == o) return true;
  return false;
}

bool GlobMatch(absl::string_view pattern, absl::string_view text) {
  // Iterative matcher with backtracking to the last '*'.
  size_t p = 0, t = 0, star = absl::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != absl::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

namespace {

// Within each run of wildcards, '?' first and one '*' at most: "*?*" and
// "?*" match the same strings, and containment compares them symbol by
// symbol.
std::string NormalizeGlob(absl::string_view g) {
  std::string out;
  size_t i = 0;
  while (i < g.size()) {
    if (g[i] != '*' && g[i] != '?') {
      out.push_back(g[i++]);
      continue;
    }
    int questions = 0;
    bool star = false;
    for (; i < g.size() && (g[i] == '*' || g[i] == '?'); ++i) {
      if (g[i] == '?') ++questions;
      else star = true;
    }
    out.append(static_cast<size_t>(questions), '?');
    if (star) out.push_back('*');
  }
  return out;
}

}  // namespace

bool GlobContains(absl::string_view outer_glob, absl::string_view inner_glob) {
  const std::string outer = NormalizeGlob(outer_glob);
  const std::string inner = NormalizeGlob(inner_glob);
  const size_t n = outer.size(), m = inner.size();
  // covers[i][j]: outer[i..] matches every string inner[j..] matches.
  std::vector<std::vector<char>> covers(n + 1, std::vector<char>(m + 1, 0));
  covers[n][m] = 1;
  for (size_t i = n + 1; i-- > 0;) {
    for (size_t j = m + 1; j-- > 0;) {
      if (i == n) {
        covers[i][j] = j == m;
        continue;
      }
      bool v = false;
      if (outer[i] == '*') {
        // The star matches nothing here, or absorbs inner's next symbol
        // (whatever that symbol produces).
        v = covers[i + 1][j] || (j < m && covers[i][j + 1]);
      } else if (j < m) {
        if (outer[i] == '?') {
          v = inner[j] != '*' && covers[i + 1][j + 1];
        } else {
          v = inner[j] == outer[i] && covers[i + 1][j + 1];
        }
      }
      covers[i][j] = v;
    }
  }
  return covers[0][0];
}

bool GlobsIntersect(absl::string_view a, absl::string_view b) {
  const size_t n = a.size(), m = b.size();
  // both[i][j]: some string matches a[i..] and b[j..].
  std::vector<std::vector<char>> both(n + 1, std::vector<char>(m + 1, 0));
  for (size_t i = n + 1; i-- > 0;) {
    for (size_t j = m + 1; j-- > 0;) {
      bool v = false;
      if (i == n && j == m) {
        v = true;
      } else if (i < n && a[i] == '*') {
        v = both[i + 1][j] || (j < m && both[i][j + 1]);
      } else if (j < m && b[j] == '*') {
        v = both[i][j + 1] || (i < n && both[i + 1][j]);
      } else if (i < n && j < m) {
        v = (a[i] == b[j] || a[i] == '?' || b[j] == '?') && both[i + 1][j + 1];
      }
      both[i][j] = v;
    }
  }
  return both[0][0];
}

std::vector<std::string> PrincipalSegments(absl::string_view principal) {
  const size_t scheme = principal.find("://");
  if (scheme == absl::string_view::npos) return {};
  absl::string_view rest = principal.substr(scheme + 3);
  const size_t slash = rest.find('/');
  if (slash == absl::string_view::npos) return {};
  std::vector<std::string> out;
  for (absl::string_view s : absl::StrSplit(rest.substr(slash + 1), '/')) {
    if (!s.empty()) out.emplace_back(s);
  }
  return out;
}

absl::StatusOr<std::shared_ptr<const Policy>> Policy::Parse(absl::string_view text) {
  // yaml-cpp reports a value of the wrong shape (a list where a name goes,
  // "two" as a segment) by throwing; a policy from the admin API must never
  // take keywardd down.
  try {
    return ParseYaml(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("policy: not valid: ", e.what()));
  }
}

absl::StatusOr<std::shared_ptr<const Policy>> Policy::ParseYaml(absl::string_view text) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("policy: not valid YAML: ", e.what()));
  }
  auto policy = std::make_shared<Policy>();
  policy->source_ = std::string(text);
  if (!root.IsMap()) return absl::InvalidArgumentError("policy: must be a mapping with `rules:`");
  for (const auto& kv : root) {
    const std::string field = kv.first.as<std::string>();
    if (field != "rules" && field != "breakglass") {
      return absl::InvalidArgumentError(absl::StrCat(
          "policy: unknown top-level field '", field.substr(0, 64),
          "' (only `rules:` and `breakglass:`)"));
    }
  }
  if (const YAML::Node bg = root["breakglass"]) {
    KW_ASSIGN_OR_RETURN(policy->breakglass_, ParseBreakGlass(bg));
  }
  const YAML::Node rules = root["rules"];
  if (!rules || !rules.IsSequence()) {
    return absl::InvalidArgumentError("policy: `rules:` must be a list");
  }
  for (size_t i = 0; i < rules.size(); ++i) {
    const YAML::Node n = rules[i];
    if (!n.IsMap()) return RuleError(i, "", "must be a mapping");
    Rule r;
    if (n["name"] && !n["name"].IsScalar()) return RuleError(i, "", "name must be a string");
    r.name = n["name"] ? n["name"].as<std::string>() : "";
    if (r.name.empty()) return RuleError(i, "", "name is required");
    for (const auto& kv : n) {
      const std::string k = kv.first.as<std::string>();
      if (k != "name" && k != "effect" && k != "principals" && k != "keys" &&
          k != "operations" && k != "conditions") {
        return RuleError(i, r.name, absl::StrCat("unknown field '", Bounded(k), "'"));
      }
    }
    if (n["effect"] && !n["effect"].IsScalar()) {
      return RuleError(i, r.name, "effect must be allow or deny");
    }
    const std::string effect = n["effect"] ? n["effect"].as<std::string>() : "allow";
    if (effect != "allow" && effect != "deny") {
      return RuleError(i, r.name, "effect must be allow or deny");
    }
    r.allow = effect == "allow";
    auto principals = StringList(n["principals"], i, r.name, "principals", true);
    if (!principals.ok()) return principals.status();
    r.principals = *principals;
    auto keys = StringList(n["keys"], i, r.name, "keys", true);
    if (!keys.ok()) return keys.status();
    r.keys = *keys;
    auto ops = StringList(n["operations"], i, r.name, "operations", true);
    if (!ops.ok()) return ops.status();
    for (const std::string& op : *ops) {
      if (op != "*" && !IsKnownOperation(op)) {
        return RuleError(i, r.name, absl::StrCat("unknown operation '", Bounded(op),
                                                 "' (see docs/policy.md)"));
      }
    }
    r.operations = *ops;
    if (const YAML::Node conds = n["conditions"]) {
      if (!conds.IsSequence()) return RuleError(i, r.name, "conditions must be a list");
      for (const auto& c : conds) {
        Condition cond;
        if (!c.IsMap() || c.size() != 1) {
          return RuleError(i, r.name,
                           "each condition is a mapping with one of context_key_present, "
                           "context_equals, context_equals_principal_segment");
        }
        if (c["context_key_present"]) {
          if (!c["context_key_present"].IsScalar()) {
            return RuleError(i, r.name, "context_key_present must name one context key");
          }
          cond.kind = Condition::Kind::kKeyPresent;
          cond.key = c["context_key_present"].as<std::string>();
        } else if (c["context_equals"]) {
          const YAML::Node e = c["context_equals"];
          if (!e.IsMap() || !e["key"] || !e["value"] || !e["key"].IsScalar() ||
              !e["value"].IsScalar()) {
            return RuleError(i, r.name, "context_equals needs key and value, both strings");
          }
          cond.kind = Condition::Kind::kEquals;
          cond.key = e["key"].as<std::string>();
          cond.value = e["value"].as<std::string>();
        } else if (c["context_equals_principal_segment"]) {
          const YAML::Node e = c["context_equals_principal_segment"];
          if (!e.IsMap() || !e["key"] || !e["segment"] || !e["key"].IsScalar() ||
              !e["segment"].IsScalar()) {
            return RuleError(i, r.name,
                             "context_equals_principal_segment needs key and segment");
          }
          cond.kind = Condition::Kind::kEqualsPrincipalSegment;
          cond.key = e["key"].as<std::string>();
          cond.segment = e["segment"].as<int>();
          if (cond.segment < 1) return RuleError(i, r.name, "segment counts from 1");
        } else {
          return RuleError(i, r.name,
                           "a condition is one of context_key_present, "
                           "context_equals, context_equals_principal_segment");
        }
        r.conditions.push_back(std::move(cond));
      }
    }
    policy->rules_.push_back(std::move(r));
  }
  return std::shared_ptr<const Policy>(std::move(policy));
}

absl::StatusOr<std::shared_ptr<const Policy>> Policy::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the policy file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  auto p = Parse(ss.str());
  if (!p.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", p.status().message()));
  }
  return p;
}

Decision Policy::EvaluateScope(const std::string& principal, const std::string& operation,
                               const std::string& pattern, const std::vector<Grant>& grants,
                               absl::Time now) const {
  static const EncryptionContext kNoContext;
  const Request r{principal, operation, pattern, &kNoContext, now};
  for (const Rule& rule : rules_) {
    if (rule.allow || !Matches(rule.principals, principal) ||
        !OperationMatches(rule.operations, operation) ||
        !CheckConditions(rule.conditions, r).empty()) {
      continue;
    }
    for (const std::string& k : rule.keys) {
      if (GlobsIntersect(k, pattern)) {
        return Decision{false, rule.name,
                        absl::StrCat("denied by rule '", rule.name, "', which covers part of '",
                                     Bounded(pattern, 256), "'")};
      }
    }
  }
  for (const Rule& rule : rules_) {
    if (!rule.allow || !Matches(rule.principals, principal) ||
        !OperationMatches(rule.operations, operation) ||
        !CheckConditions(rule.conditions, r).empty()) {
      continue;
    }
    for (const std::string& k : rule.keys) {
      if (GlobContains(k, pattern)) {
        return Decision{true, rule.name, absl::StrCat("allowed by rule '", rule.name, "'")};
      }
    }
  }
  for (const Grant& g : grants) {
    if (g.revoked || now >= g.expires || g.principal != principal || !g.context.empty() ||
        !OperationMatches(g.operations, operation) || !GlobContains(g.key, pattern)) {
      continue;
    }
    return Decision{true, absl::StrCat("grant:", g.id), absl::StrCat("allowed by grant ", g.id)};
  }
  return Decision{false, "",
                  absl::StrCat("no rule or grant lets ", Bounded(principal, 256), " ", operation,
                               " on every key that '", Bounded(pattern, 256),
                               "' matches (a scope must lie within the caller's own)")};
}

absl::Status Policy::CheckManageable() const {
  const std::string op = "manage-policy";
  for (const Rule& allow : rules_) {
    if (!allow.allow || !allow.conditions.empty() || !OperationMatches(allow.operations, op) ||
        !Matches(allow.keys, "*")) {
      continue;
    }
    for (const std::string& who : allow.principals) {
      bool overridden = false;
      for (const Rule& deny : rules_) {
        if (deny.allow || !deny.conditions.empty() || !OperationMatches(deny.operations, op) ||
            !Matches(deny.keys, "*")) {
          continue;
        }
        for (const std::string& denied : deny.principals) {
          if (GlobContains(denied, who)) overridden = true;
        }
      }
      if (!overridden) return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(
      "policy: no principal would be allowed manage-policy (an allow rule for it on keys "
      "[\"*\"], with no conditions, not overridden by a deny rule); nobody could change "
      "the policy afterwards, so it is refused");
}

Decision Policy::Evaluate(const Request& r, const std::vector<Grant>& grants) const {
  const Rule* allow = nullptr;
  std::string closest;  // why the most relevant rule did not apply
  for (const Rule& rule : rules_) {
    if (!Matches(rule.principals, r.principal) || !Matches(rule.keys, r.key) ||
        !OperationMatches(rule.operations, r.operation)) {
      continue;
    }
    const std::string unmet = CheckConditions(rule.conditions, r);
    if (!unmet.empty()) {
      if (closest.empty()) closest = absl::StrCat("rule ", rule.name, ": ", unmet);
      continue;
    }
    if (!rule.allow) {
      return Decision{false, rule.name,
                      absl::StrCat("denied by rule '", rule.name, "'")};
    }
    if (allow == nullptr) allow = &rule;
  }
  if (allow != nullptr) {
    return Decision{true, allow->name, absl::StrCat("allowed by rule '", allow->name, "'")};
  }
  for (const Grant& g : grants) {
    if (g.revoked || r.now >= g.expires || g.principal != r.principal ||
        !GlobMatch(g.key, r.key) || !OperationMatches(g.operations, r.operation)) {
      continue;
    }
    bool context_ok = true;
    for (const auto& [k, v] : g.context) {
      auto it = r.context ? r.context->find(k) : EncryptionContext::const_iterator();
      if (r.context == nullptr || it == r.context->end() || it->second != v) {
        context_ok = false;
      }
    }
    if (context_ok) {
      return Decision{true, absl::StrCat("grant:", g.id),
                      absl::StrCat("allowed by grant ", g.id)};
    }
  }
  return Decision{false, "",
                  absl::StrCat("no rule or grant allows ", r.principal, " to ",
                               r.operation, " on key '", r.key, "'",
                               closest.empty() ? "" : absl::StrCat(" (", closest, ")"))};
}

}  // namespace keyward::policy
