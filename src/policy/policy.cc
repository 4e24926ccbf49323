#include "policy/policy.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "yaml-cpp/yaml.h"

namespace keyward::policy {
namespace {

absl::Status RuleError(size_t index, const std::string& name, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      "policy rule ", index + 1, name.empty() ? "" : absl::StrCat(" (", name, ")"),
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
  if (n.IsScalar()) {
    out.push_back(n.as<std::string>());
  } else if (n.IsSequence()) {
    for (const auto& v : n) {
      if (!v.IsScalar()) return RuleError(i, name, absl::StrCat(field, " must list strings"));
      out.push_back(v.as<std::string>());
    }
  } else {
    return RuleError(i, name, absl::StrCat(field, " must be a list of strings"));
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
        if (it == ctx.end() || it->second != c.value) {
          return absl::StrCat("context '", c.key, "' is not '", c.value, "'");
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

}  // namespace

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
  const YAML::Node rules = root["rules"];
  if (!rules || !rules.IsSequence()) {
    return absl::InvalidArgumentError("policy: `rules:` must be a list");
  }
  for (size_t i = 0; i < rules.size(); ++i) {
    const YAML::Node n = rules[i];
    if (!n.IsMap()) return RuleError(i, "", "must be a mapping");
    Rule r;
    r.name = n["name"] ? n["name"].as<std::string>() : "";
    if (r.name.empty()) return RuleError(i, "", "name is required");
    for (const auto& kv : n) {
      const std::string k = kv.first.as<std::string>();
      if (k != "name" && k != "effect" && k != "principals" && k != "keys" &&
          k != "operations" && k != "conditions") {
        return RuleError(i, r.name, absl::StrCat("unknown field '", k, "'"));
      }
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
        return RuleError(i, r.name, absl::StrCat("unknown operation '", op,
                                                 "' (see docs/policy.md)"));
      }
    }
    r.operations = *ops;
    if (const YAML::Node conds = n["conditions"]) {
      if (!conds.IsSequence()) return RuleError(i, r.name, "conditions must be a list");
      for (const auto& c : conds) {
        Condition cond;
        if (c["context_key_present"]) {
          cond.kind = Condition::Kind::kKeyPresent;
          cond.key = c["context_key_present"].as<std::string>();
        } else if (c["context_equals"]) {
          const YAML::Node e = c["context_equals"];
          if (!e["key"] || !e["value"]) {
            return RuleError(i, r.name, "context_equals needs key and value");
          }
          cond.kind = Condition::Kind::kEquals;
          cond.key = e["key"].as<std::string>();
          cond.value = e["value"].as<std::string>();
        } else if (c["context_equals_principal_segment"]) {
          const YAML::Node e = c["context_equals_principal_segment"];
          if (!e["key"] || !e["segment"]) {
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
