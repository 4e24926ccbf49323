// `keyward index plan` as a user runs it: the built binary on schema files
// written by the test, its text and JSON output, and its exit codes
// (0 accepted, 3 refused, 2 usage, 6 no such table).
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/subprocess.h"

namespace keyward {
namespace {

using ::keyward::testing::ProcessResult;
using ::keyward::testing::RunProcess;
using ::keyward::testing::TempDir;
using ::keyward::testing::WriteFileOrDie;
using ::testing::AllOf;
using ::testing::HasSubstr;

ProcessResult Keyward(std::vector<std::string> args) {
  args.insert(args.begin(), KEYWARD_CLI_PATH);
  ProcessResult r = RunProcess(args);
  EXPECT_FALSE(r.signaled) << "keyward died by signal " << r.signal;
  return r;
}

constexpr char kSchema[] = R"(version: 1
dataset: shop
key: shop
classes:
  pii: { encrypt: required, readers: [app] }
tables:
  customers:
    id_column: id
    fields:
      email:
        class: pii
        treatment: randomized
        indexes: [{ name: email_idx, transform: [trim, lowercase], bits: auto }]
      card:
        class: pii
        treatment: randomized
        indexes: [{ name: card_last4, transform: [digits, "last:4"], bits: auto }]
      last_name: { class: pii, treatment: randomized }
      birth_year: { class: pii, treatment: randomized, cardinality: 120 }
    indexes:
      - { name: name_year, fields: [last_name, birth_year], bits: 12 }
  risky:
    id_column: id
    fields:
      email:
        class: pii
        treatment: randomized
        indexes:
          - { name: email_full, transform: [lowercase], bits: 20 }
          - { name: email_trim, transform: [trim], bits: 20 }
)";

class IndexCliTest : public ::testing::Test {
 protected:
  void SetUp() override { WriteFileOrDie(schema_, kSchema); }
  TempDir dir_;
  std::string schema_ = dir_.File("shop.yaml");
};

TEST_F(IndexCliTest, AnAcceptedPlanPrintsItsReasoningAndBits) {
  ProcessResult r = Keyward({"index", "plan", "--schema", schema_, "--table",
                             "customers", "--rows", "1e6"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out,
              AllOf(HasSubstr("log2(1000000/2) = 18.9 bits"),
                    HasSubstr("email_idx (email): domain about 1000000"),
                    HasSubstr("accepted: table customers at 1000000 rows")));
  // The table: name, columns, declared, chosen bits.
  EXPECT_THAT(r.out, ::testing::ContainsRegex("email_idx +email +auto +18 "));
  EXPECT_THAT(r.out, ::testing::ContainsRegex(
                         "name_year +last_name,birth_year +12 +12 "));
  EXPECT_EQ(r.err, "");

  ProcessResult j = Keyward({"index", "plan", "--schema", schema_, "--table",
                             "customers", "--rows", "1000000", "--json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  const auto json = nlohmann::json::parse(j.out);
  EXPECT_EQ(json["accepted"], true);
  EXPECT_EQ(json["rows"], 1000000);
  ASSERT_EQ(json["indexes"].size(), 3u);
  EXPECT_EQ(json["indexes"][0]["name"], "email_idx");
  EXPECT_EQ(json["indexes"][0]["declared_bits"], "auto");
  EXPECT_EQ(json["indexes"][0]["bits"], 18);
  EXPECT_EQ(json["indexes"][1]["domain"], 10000.0);
  EXPECT_EQ(json["indexes"][1]["domain_source"], "transforms");
  EXPECT_EQ(json["indexes"][2]["declared_bits"], "12");
  EXPECT_EQ(json["groups"].size(), 3u);
  EXPECT_TRUE(json["refusals"].empty());

  // A stricter --min-matches leaves fewer bits.
  ProcessResult strict =
      Keyward({"index", "plan", "--schema", schema_, "--table", "customers",
               "--rows", "1000000", "--min-matches", "64", "--json"});
  ASSERT_EQ(strict.exit_code, 0) << strict.err;
  EXPECT_EQ(nlohmann::json::parse(strict.out)["indexes"][0]["bits"], 13);
}

TEST_F(IndexCliTest, ARefusedPlanExitsThreeAndSaysWhy) {
  ProcessResult r = Keyward({"index", "plan", "--schema", schema_, "--table",
                             "risky", "--rows", "1000000"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_THAT(r.out, AllOf(HasSubstr("refused: table risky at 1000000 rows"),
                           HasSubstr("email_full (20 bits)")));
  EXPECT_THAT(r.err,
              AllOf(HasSubstr("keyward: "), HasSubstr("would single out rows"),
                    HasSubstr("at most 18 bits in total")));

  ProcessResult j = Keyward({"index", "plan", "--schema", schema_, "--table",
                             "risky", "--rows", "1000000", "--json"});
  EXPECT_EQ(j.exit_code, 3);
  const auto json = nlohmann::json::parse(j.out);
  EXPECT_EQ(json["accepted"], false);
  ASSERT_EQ(json["refusals"].size(), 1u);
  EXPECT_EQ(json["groups"][0]["accepted"], false);
}

TEST_F(IndexCliTest, BadArgumentsAreUsageErrors) {
  for (const char* rows : {"0", "many", "-5", "1.5"}) {
    ProcessResult r = Keyward({"index", "plan", "--schema", schema_, "--table",
                               "customers", "--rows", rows});
    EXPECT_EQ(r.exit_code, 2) << rows << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("--rows")) << rows;
  }
  ProcessResult m =
      Keyward({"index", "plan", "--schema", schema_, "--table", "customers",
               "--rows", "1000", "--min-matches", "1"});
  EXPECT_EQ(m.exit_code, 2) << m.err;
  EXPECT_EQ(
      Keyward({"index", "plan", "--schema", schema_, "--table", "customers"})
          .exit_code,
      2);
  ProcessResult t = Keyward({"index", "plan", "--schema", schema_, "--table",
                             "orders", "--rows", "1000"});
  EXPECT_EQ(t.exit_code, 6) << t.err;
  EXPECT_THAT(t.err, HasSubstr("no table \"orders\""));
}

}  // namespace
}  // namespace keyward
