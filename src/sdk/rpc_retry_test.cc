// The retry table covers the service exactly, and docs/sdk.md shows it.
#include "sdk/rpc_retry.h"

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "keyward/v1/keyward.pb.h"

namespace keyward::sdk {
namespace {

const google::protobuf::ServiceDescriptor& Service() {
  const google::protobuf::ServiceDescriptor* s =
      v1::GetServerInfoRequest::descriptor()->file()->FindServiceByName("KeyManagement");
  EXPECT_NE(s, nullptr);
  return *s;
}

// A new RPC without a row fails here: decide whether it may be retried.
TEST(RpcRetryTest, EveryMethodOfTheServiceHasARule) {
  const auto& service = Service();
  ASSERT_GT(service.method_count(), 0);
  for (int i = 0; i < service.method_count(); ++i) {
    const std::string name(service.method(i)->name());
    const RpcRetryRule* rule = FindRpcRetryRule(name);
    ASSERT_NE(rule, nullptr) << name << " has no row in sdk/rpc_retry.cc";
    EXPECT_FALSE(rule->why.empty()) << name;
    // A state-changing call names how to check whether it was applied.
    EXPECT_EQ(rule->retry == RetryClass::kOnlyIfNotSent, !rule->check.empty()) << name;
  }
}

TEST(RpcRetryTest, EveryRuleNamesAMethodOfTheServiceOnce) {
  std::set<std::string> seen;
  for (const RpcRetryRule& rule : RpcRetryRules()) {
    EXPECT_NE(Service().FindMethodByName(std::string(rule.method)), nullptr) << rule.method;
    EXPECT_TRUE(seen.insert(std::string(rule.method)).second) << rule.method << " twice";
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(Service().method_count()));
  EXPECT_EQ(FindRpcRetryRule("NoSuchMethod"), nullptr);
}

// docs/sdk.md has one row per method, and says what the table does.
TEST(RpcRetryTest, TheDocumentationShowsTheTable) {
  std::ifstream in("docs/sdk.md");
  ASSERT_TRUE(in) << "run from the repository root";
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  for (const RpcRetryRule& rule : RpcRetryRules()) {
    const std::string row = absl::StrCat(
        "| `", rule.method, "` | ",
        rule.retry == RetryClass::kSafe ? "yes" : "only if never sent", " |");
    EXPECT_NE(doc.find(row), std::string::npos) << "docs/sdk.md lacks the row: " << row;
  }
}

}  // namespace
}  // namespace keyward::sdk
