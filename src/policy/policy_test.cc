#include "policy/policy.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace keyward::policy {
namespace {

using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kPolicy[] = R"(
rules:
  - name: admins
    principals: ["spiffe://keyward.dev/admin"]
    keys: ["*"]
    operations: ["*"]
  - name: apps-data
    principals: ["spiffe://keyward.dev/app"]
    keys: ["*"]
    operations: [encrypt, generate-data-key, decrypt, rewrap, describe]
  - name: tenants
    principals: ["spiffe://example.org/tenant/*/app"]
    keys: ["tenants/*"]
    operations: [decrypt, generate-data-key]
    conditions:
      - context_key_present: tenant
      - context_equals: {key: region, value: eu}
      - context_equals_principal_segment: {key: tenant, segment: 2}
  - name: never-destroy-payments
    effect: deny
    principals: ["*"]
    keys: ["payments/*"]
    operations: [destroy-version]
)";

class PolicyTest : public ::testing::Test {
 protected:
  Decision Check(const std::string& principal, const std::string& op,
                 const std::string& key, const EncryptionContext& ctx = {},
                 const std::vector<Grant>& grants = {}) {
    Request r{principal, op, key, &ctx, absl::FromUnixSeconds(1000)};
    return policy_->Evaluate(r, grants);
  }
  std::shared_ptr<const Policy> policy_ = *Policy::Parse(kPolicy);
};

TEST_F(PolicyTest, RulesAllowWhatTheyName) {
  EXPECT_TRUE(Check("spiffe://keyward.dev/admin", "rotate-key", "x").allowed);
  Decision d = Check("spiffe://keyward.dev/app", "decrypt", "payments/cards");
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.rule, "apps-data");
}

TEST_F(PolicyTest, DefaultDenyAndOperationScope) {
  Decision d = Check("spiffe://keyward.dev/app", "rotate-key", "payments/cards");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.rule, "");
  EXPECT_THAT(d.reason, HasSubstr("no rule or grant allows"));
  EXPECT_FALSE(Check("spiffe://keyward.dev/stranger", "decrypt", "k").allowed);
}

TEST_F(PolicyTest, ExplicitDenyWins) {
  Decision d = Check("spiffe://keyward.dev/admin", "destroy-version", "payments/cards");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.rule, "never-destroy-payments");
  EXPECT_TRUE(Check("spiffe://keyward.dev/admin", "destroy-version", "other").allowed);
}

TEST_F(PolicyTest, EveryConditionKindIsEnforced) {
  const std::string acme = "spiffe://example.org/tenant/acme/app";
  EXPECT_TRUE(Check(acme, "decrypt", "tenants/db",
                    {{"tenant", "acme"}, {"region", "eu"}}).allowed);
  // key missing
  EXPECT_FALSE(Check(acme, "decrypt", "tenants/db", {{"region", "eu"}}).allowed);
  // value must equal a constant
  Decision wrong_region = Check(acme, "decrypt", "tenants/db",
                                {{"tenant", "acme"}, {"region", "us"}});
  EXPECT_FALSE(wrong_region.allowed);
  EXPECT_THAT(wrong_region.reason, HasSubstr("region"));
  // value must equal the caller's own tenant segment
  Decision other_tenant = Check(acme, "decrypt", "tenants/db",
                                {{"tenant", "globex"}, {"region", "eu"}});
  EXPECT_FALSE(other_tenant.allowed);
  EXPECT_THAT(other_tenant.reason, HasSubstr("segment 2"));
  // key glob
  EXPECT_FALSE(Check(acme, "decrypt", "payments/db",
                     {{"tenant", "acme"}, {"region", "eu"}}).allowed);
}

TEST_F(PolicyTest, GrantsAreTimeLimitedRevocableAndScoped) {
  Grant g;
  g.id = "g1";
  g.principal = "spiffe://keyward.dev/responder";
  g.key = "payments/*";
  g.operations = {"decrypt"};
  g.context = {{"case", "INC-42"}};
  g.expires = absl::FromUnixSeconds(2000);
  const std::string who = g.principal;
  Decision d = Check(who, "decrypt", "payments/cards", {{"case", "INC-42"}}, {g});
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.rule, "grant:g1");
  EXPECT_FALSE(Check(who, "decrypt", "payments/cards", {{"case", "INC-43"}}, {g}).allowed);
  EXPECT_FALSE(Check(who, "encrypt", "payments/cards", {{"case", "INC-42"}}, {g}).allowed);
  EXPECT_FALSE(Check(who, "decrypt", "hr/salaries", {{"case", "INC-42"}}, {g}).allowed);
  Grant expired = g;
  expired.expires = absl::FromUnixSeconds(999);
  EXPECT_FALSE(Check(who, "decrypt", "payments/cards", {{"case", "INC-42"}}, {expired}).allowed);
  Grant revoked = g;
  revoked.revoked = absl::FromUnixSeconds(500);
  EXPECT_FALSE(Check(who, "decrypt", "payments/cards", {{"case", "INC-42"}}, {revoked}).allowed);
  // A deny rule beats a grant.
  Grant destroy = g;
  destroy.operations = {"destroy-version"};
  EXPECT_FALSE(Check(who, "destroy-version", "payments/cards", {{"case", "INC-42"}},
                     {destroy}).allowed);
}

TEST(PolicyParseTest, MistakesAreNamed) {
  EXPECT_THAT(Policy::Parse("rules: [{name: x, principals: [a], keys: [b], operations: [fly]}]"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown operation 'fly'")));
  EXPECT_THAT(Policy::Parse("rules: [{name: x, keys: [b], operations: [decrypt]}]"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("principals is required")));
  EXPECT_THAT(Policy::Parse("rules: [{name: x, effect: maybe, principals: [a], keys: [b], operations: [decrypt]}]"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("effect")));
  EXPECT_THAT(Policy::Parse("rules: [{name: x, principals: [a], keys: [b], operations: [decrypt], conditions: [{maybe: 1}]}]"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("condition")));
  EXPECT_THAT(Policy::Parse("nothing: here"), StatusIs(absl::StatusCode::kInvalidArgument));
  // Values of the wrong shape are errors, not crashes.
  for (const char* bad : {
           "rules: [{name: [x], principals: [a], keys: [b], operations: [decrypt]}]",
           "rules: [{name: x, principals: [a], keys: [b], operations: [decrypt], "
           "conditions: [{context_equals_principal_segment: {key: t, segment: two}}]}]",
           "rules: [{name: x, principals: [a], keys: [b], operations: [decrypt], "
           "conditions: [{context_key_present: {a: b}}]}]",
           "rules: [{name: x, effect: [allow], principals: [a], keys: [b], operations: [decrypt]}]",
           "rules: 7",
           "- just\n- a list",
       }) {
    EXPECT_THAT(Policy::Parse(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
}

TEST(GlobTest, StarCrossesSlashes) {
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("payments/*", "payments/eu/cards"));
  EXPECT_FALSE(GlobMatch("payments/*", "payment"));
  EXPECT_TRUE(GlobMatch("a*b*c", "axxbyyc"));
  EXPECT_FALSE(GlobMatch("a*b*c", "axxbyy"));
  EXPECT_TRUE(GlobMatch("spiffe://x/t/*/app", "spiffe://x/t/acme/app"));
  EXPECT_EQ(PrincipalSegments("spiffe://x/t/acme/app"),
            (std::vector<std::string>{"t", "acme", "app"}));
  EXPECT_TRUE(PrincipalSegments("admin").empty());
}

TEST(PolicyParseTest, ErrorsNeverCarryUnboundedInput) {
  const std::string huge(10000, 'x');
  for (const std::string& doc : {
           absl::StrCat("rules: [{name: x, principals: [a], keys: [b], operations: [", huge, "]}]"),
           absl::StrCat("rules: [{name: ", huge, ", principals: [a], keys: [b], operations: [fly]}]"),
           absl::StrCat("rules: [{name: x, ", huge, ": 1, principals: [a], keys: [b], operations: [decrypt]}]"),
       }) {
    auto parsed = Policy::Parse(doc);
    ASSERT_FALSE(parsed.ok());
    EXPECT_LT(parsed.status().message().size(), 400u) << parsed.status().message().substr(0, 200);
  }
}

TEST(GlobTest, ContainmentIsOfWholeLanguagesNotOfNames) {
  EXPECT_TRUE(GlobContains("*", "anything/*"));
  EXPECT_TRUE(GlobContains("g/*", "g/a"));
  EXPECT_TRUE(GlobContains("g/*", "g/*"));
  EXPECT_TRUE(GlobContains("g/*", "g/a/*"));
  EXPECT_TRUE(GlobContains("g/a*", "g/ab*"));
  EXPECT_TRUE(GlobContains("a?c", "abc"));
  EXPECT_TRUE(GlobContains("g/*/x", "g/a/x"));
  // "g/*" matches "g/?" as a name but is far wider: the review's escape.
  EXPECT_FALSE(GlobContains("g/?", "g/*"));
  EXPECT_FALSE(GlobContains("g/ab*", "g/a*"));
  EXPECT_FALSE(GlobContains("abc", "a?c"));
  EXPECT_FALSE(GlobContains("g/*", "h/*"));
  EXPECT_FALSE(GlobContains("g/*/x", "g/*"));
}

TEST(GlobTest, IntersectionFindsACommonName) {
  EXPECT_TRUE(GlobsIntersect("payments/secret/*", "payments/*"));
  EXPECT_TRUE(GlobsIntersect("*x", "y*"));  // "yx"
  EXPECT_TRUE(GlobsIntersect("a?", "ab"));
  EXPECT_TRUE(GlobsIntersect("*", ""));
  EXPECT_FALSE(GlobsIntersect("a/*", "b/*"));
  EXPECT_FALSE(GlobsIntersect("a?", "abc"));
  EXPECT_FALSE(GlobsIntersect("a*b", "c*"));
}

TEST_F(PolicyTest, AScopeIsAllowedOnlyWhenEveryKeyInItIs) {
  const absl::Time now = absl::FromUnixSeconds(1000);
  const std::string admin = "spiffe://keyward.dev/admin";
  EXPECT_TRUE(policy_->EvaluateScope(admin, "rotate-key", "g/*", {}, now).allowed);
  // A deny rule on part of the scope refuses all of it.
  Decision d = policy_->EvaluateScope(admin, "destroy-version", "*", {}, now);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.rule, "never-destroy-payments");
  EXPECT_TRUE(policy_->EvaluateScope(admin, "destroy-version", "other/*", {}, now).allowed);
  // A rule with conditions cannot cover a scope that carries no context.
  EXPECT_FALSE(policy_->EvaluateScope("spiffe://example.org/tenant/acme/app", "decrypt",
                                      "tenants/*", {}, now).allowed);
  // Grants count by containment too.
  Grant g;
  g.id = "g1";
  g.principal = "spiffe://keyward.dev/ops";
  g.key = "g/a*";
  g.operations = {"rotate-key"};
  g.expires = now + absl::Hours(1);
  EXPECT_TRUE(policy_->EvaluateScope(g.principal, "rotate-key", "g/ab", {g}, now).allowed);
  EXPECT_TRUE(policy_->EvaluateScope(g.principal, "rotate-key", "g/ab*", {g}, now).allowed);
  EXPECT_FALSE(policy_->EvaluateScope(g.principal, "rotate-key", "g/*", {g}, now).allowed);
  g.expires = now;
  EXPECT_FALSE(policy_->EvaluateScope(g.principal, "rotate-key", "g/ab", {g}, now).allowed);
}

TEST(PolicyManageableTest, APolicyNobodyCouldChangeIsRefused) {
  KW_EXPECT_OK(Policy::Parse(kPolicy).value()->CheckManageable());
  auto apps_only = Policy::Parse(R"(rules:
  - name: apps
    principals: ["spiffe://keyward.dev/app"]
    keys: ["*"]
    operations: [decrypt]
)");
  ASSERT_TRUE(apps_only.ok());
  EXPECT_THAT((*apps_only)->CheckManageable(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("manage-policy")));
  // Allowed, then wholly denied by another rule.
  auto overridden = Policy::Parse(R"(rules:
  - name: admins
    principals: ["spiffe://keyward.dev/admin"]
    keys: ["*"]
    operations: ["*"]
  - name: nobody-manages
    effect: deny
    principals: ["*"]
    keys: ["*"]
    operations: [manage-policy]
)");
  ASSERT_TRUE(overridden.ok());
  EXPECT_FALSE((*overridden)->CheckManageable().ok());
  // Only under a condition: no context comes with policy calls.
  auto conditional = Policy::Parse(R"(rules:
  - name: admins
    principals: ["spiffe://keyward.dev/admin"]
    keys: ["*"]
    operations: [manage-policy]
    conditions:
      - context_key_present: ticket
)");
  ASSERT_TRUE(conditional.ok());
  EXPECT_FALSE((*conditional)->CheckManageable().ok());
}

constexpr char kRulesHead[] = R"(rules:
  - name: admins
    principals: ["spiffe://keyward.dev/admin"]
    keys: ["*"]
    operations: ["*"]
)";

TEST(BreakGlassPolicyTest, ParsesEntriesAndFindsTheRequestersRule) {
  auto p = Policy::Parse(absl::StrCat(kRulesHead, R"(breakglass:
  - name: restricted
    keys: ["restricted/*"]
    requesters: ["spiffe://keyward.dev/app"]
    approvers: ["spiffe://keyward.dev/admin", "spiffe://keyward.dev/approver"]
    quorum: 2
    max_duration: 8h
)"));
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ((*p)->breakglass().size(), 1u);
  EXPECT_EQ((*p)->breakglass()[0].quorum, 2);
  EXPECT_EQ((*p)->breakglass()[0].max_duration, absl::Hours(8));
  const BreakGlassRule* r = (*p)->FindBreakGlassRule("spiffe://keyward.dev/app", "restricted/a");
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(Policy::IsBreakGlassApprover(*r, "spiffe://keyward.dev/approver"));
  EXPECT_FALSE(Policy::IsBreakGlassApprover(*r, "spiffe://keyward.dev/app"));
  EXPECT_EQ((*p)->FindBreakGlassRule("spiffe://keyward.dev/admin", "restricted/a"), nullptr);
  EXPECT_EQ((*p)->FindBreakGlassRule("spiffe://keyward.dev/app", "other/a"), nullptr);
}

TEST(BreakGlassPolicyTest, RefusesEntriesThatCouldNeverWorkOrWidenSilently) {
  const char* bad[] = {
      // a quorum two named approvers can never reach
      R"(breakglass:
  - {name: b, keys: ["k"], requesters: ["a"], approvers: ["x", "y"], quorum: 3}
)",
      // no quorum
      R"(breakglass:
  - {name: b, keys: ["k"], requesters: ["a"], approvers: ["x"]}
)",
      R"(breakglass:
  - {name: b, keys: ["k"], requesters: ["a"], approvers: ["x"], quorum: 0}
)",
      // a string where a list goes
      R"(breakglass:
  - {name: b, keys: "k", requesters: ["a"], approvers: ["x"], quorum: 1}
)",
      R"(breakglass:
  - {name: b, keys: ["k"], requesters: ["a"], approvers: ["x"], quorum: 1, extra: 1}
)",
      R"(breakglass:
  - {name: b, keys: ["k"], requesters: ["a"], approvers: ["x"], quorum: 1, max_duration: 30d}
)",
  };
  for (const char* b : bad) {
    EXPECT_THAT(Policy::Parse(absl::StrCat(kRulesHead, b)).status(),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("breakglass")))
        << b;
  }
}

TEST(BreakGlassGrantTest, StatesFollowApprovalTimeCountAndRevocation) {
  const absl::Time t0 = absl::FromUnixSeconds(1000000);
  BreakGlassGrant g;
  g.quorum = 2;
  g.duration = absl::Hours(1);
  g.max_decrypts = 2;
  g.requested = t0;
  g.request_expires = t0 + kBreakGlassRequestLifetime;
  EXPECT_EQ(g.StateAt(t0), BreakGlassGrant::State::kPending);
  EXPECT_EQ(g.StateAt(t0 + kBreakGlassRequestLifetime), BreakGlassGrant::State::kLapsed);
  g.activated = t0 + absl::Minutes(5);
  EXPECT_EQ(g.StateAt(t0 + absl::Minutes(10)), BreakGlassGrant::State::kActive);
  EXPECT_EQ(g.StateAt(t0 + absl::Minutes(65)), BreakGlassGrant::State::kExpired);
  g.decrypts = 2;
  EXPECT_EQ(g.StateAt(t0 + absl::Minutes(10)), BreakGlassGrant::State::kExhausted);
  g.revoked = t0 + absl::Minutes(6);
  EXPECT_EQ(g.StateAt(t0 + absl::Minutes(10)), BreakGlassGrant::State::kRevoked);
}

}  // namespace
}  // namespace keyward::policy
