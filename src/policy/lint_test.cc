#include "policy/lint.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace keyward::policy {
namespace {

using ::testing::IsEmpty;

std::vector<std::string> Checks(const std::string& yaml,
                                const std::vector<std::string>& principals = {}) {
  auto p = Policy::Parse(yaml);
  EXPECT_TRUE(p.ok()) << p.status();
  std::vector<std::string> out;
  if (!p.ok()) return out;
  for (const LintFinding& f : LintPolicy(**p, principals)) {
    out.push_back(f.check + ":" + f.rule);
  }
  return out;
}

constexpr char kAdmin[] = R"(
  - name: admin
    principals: ["spiffe://x/admin"]
    keys: ["*"]
    operations: ["*"]
)";

TEST(PolicyLintTest, ACarefulPolicyHasNoFindings) {
  EXPECT_THAT(Checks(std::string("rules:") + kAdmin + R"(
  - name: app
    principals: ["spiffe://x/app"]
    keys: ["payments/*"]
    operations: [encrypt, decrypt]
)",
                     {"spiffe://x/admin", "spiffe://x/app"}),
              IsEmpty());
}

TEST(PolicyLintTest, EveryoneDecryptingEverythingIsAFailure) {
  auto p = Policy::Parse(std::string("rules:") + kAdmin + R"(
  - name: open
    principals: ["*"]
    keys: ["*"]
    operations: [decrypt]
  - name: open-but-conditional
    principals: ["*"]
    keys: ["*"]
    operations: [decrypt]
    conditions:
      - context_equals: {key: tenant, value: acme}
)");
  ASSERT_TRUE(p.ok()) << p.status();
  auto findings = LintPolicy(**p, {});
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].check, "decrypt-everything");
  EXPECT_EQ(findings[0].rule, "open");
  EXPECT_EQ(findings[0].severity, LintFinding::Severity::kFailure);
}

TEST(PolicyLintTest, RulesThatNeverMatch) {
  EXPECT_THAT(Checks(std::string("rules:") + kAdmin + R"(
  - name: app-legacy
    principals: ["spiffe://x/app"]
    keys: ["legacy/old/*"]
    operations: [decrypt]
  - name: no-legacy
    effect: deny
    principals: ["spiffe://x/*"]
    keys: ["legacy/*"]
    operations: ["*"]
  - name: impossible
    principals: ["spiffe://x/app"]
    keys: ["k"]
    operations: [decrypt]
    conditions:
      - context_equals: {key: tenant, value: a}
      - context_equals: {key: tenant, value: b}
)"),
              ::testing::ElementsAre("rule-never-matches:app-legacy",
                                     "rule-never-matches:impossible"));
}

TEST(PolicyLintTest, PrincipalsWithoutRulesAndSelfGrants) {
  EXPECT_THAT(Checks(std::string("rules:") + kAdmin + R"(
  - name: oncall
    principals: ["spiffe://x/oncall"]
    keys: ["*"]
    operations: [self-grant, manage-grants]
)",
                     {"spiffe://x/admin", "spiffe://x/batch"}),
              ::testing::ElementsAre("break-glass-without-quorum:oncall",
                                     "principal-without-rule:"));
}

TEST(PolicyLintTest, BreakGlassThatOneApproverOpensAlone) {
  const std::string rules = std::string("rules:") + kAdmin;
  EXPECT_THAT(Checks(rules + R"(breakglass:
  - {name: solo, keys: ["restricted/*"], requesters: ["spiffe://x/app"],
     approvers: ["spiffe://x/admin"], quorum: 1}
)",
                     {"spiffe://x/admin"}),
              ::testing::ElementsAre("break-glass-without-quorum:solo"));
  EXPECT_THAT(Checks(rules + R"(breakglass:
  - {name: pair, keys: ["restricted/*"], requesters: ["spiffe://x/app"],
     approvers: ["spiffe://x/admin", "spiffe://x/approver"], quorum: 2}
)",
                     {"spiffe://x/admin"}),
              IsEmpty());
}

}  // namespace
}  // namespace keyward::policy
