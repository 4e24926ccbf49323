// `keyward classify scan` as a user runs it: the built binary on a SQLite
// fixture (classify/scan_fixture.h), its JSON and text output, the draft
// schema file, and its exit codes.
#include <string>
#include <vector>

#include "appdb/database.h"
#include "classify/scan_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/status_matchers.h"
#include "testing/subprocess.h"

namespace keyward {
namespace {

using ::keyward::testing::ProcessResult;
using ::keyward::testing::ReadFileOrDie;
using ::keyward::testing::RunProcess;
using ::keyward::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

ProcessResult Keyward(std::vector<std::string> args) {
  args.insert(args.begin(), KEYWARD_CLI_PATH);
  ProcessResult r = RunProcess(args);
  EXPECT_FALSE(r.signaled) << "keyward died by signal " << r.signal;
  return r;
}

class ClassifyCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = "sqlite:" + dir_.File("shop.db");
    KW_ASSERT_OK_AND_ASSIGN(auto db,
                            appdb::Database::Open(url_, /*create=*/true));
    KW_ASSERT_OK_AND_ASSIGN(planted_,
                            classify::testing::BuildScanFixture(*db, 120));
  }
  void ExpectNoPlantedValue(const std::string& output) {
    for (const std::string& value : planted_.All()) {
      ASSERT_THAT(output, Not(HasSubstr(value)));
    }
  }
  TempDir dir_;
  std::string url_;
  classify::testing::PlantedValues planted_;
};

TEST_F(ClassifyCliTest, JsonNamesTheColumnsAndNeverAFullValue) {
  ProcessResult r = Keyward({"classify", "scan", "--db", url_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectNoPlantedValue(r.out);
  ExpectNoPlantedValue(r.err);
  const auto json = nlohmann::json::parse(r.out);
  EXPECT_EQ(json["database"], url_);
  std::vector<std::string> found;
  for (const auto& c : json["columns"]) {
    found.push_back(c["table"].get<std::string>() + "." +
                    c["column"].get<std::string>() + ":" +
                    c["kind"].get<std::string>());
    EXPECT_EQ(c["matches"], 120);
    EXPECT_EQ(c["sampled"], 120);
  }
  EXPECT_THAT(found, ::testing::UnorderedElementsAre("customers.card:card",
                                                     "customers.email:email",
                                                     "sessions.token:jwt"));
  ASSERT_EQ(json["encrypted_columns"].size(), 2u);
  EXPECT_EQ(json["encrypted_columns"][0]["column"], "ssn_enc");
  EXPECT_EQ(json["encrypted_columns"][0]["encrypted"], 120);
  EXPECT_EQ(json["encrypted_columns"][1]["column"], "card_enc");
  EXPECT_EQ(json["encrypted_columns"][1]["encrypted"], 120);
  EXPECT_THAT(json["draft_schema"].get<std::string>(),
              HasSubstr("card: { class: pci"));
}

TEST_F(ClassifyCliTest, TextReportAndDraftFile) {
  const std::string schema = dir_.File("draft.yaml");
  ProcessResult r =
      Keyward({"classify", "scan", "--db", url_, "--schema-out", schema});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectNoPlantedValue(r.out);
  EXPECT_THAT(r.out, HasSubstr("customers.card"));
  EXPECT_THAT(r.out,
              HasSubstr("3 column(s) hold unencrypted sensitive values"));
  EXPECT_THAT(
      r.out,
      HasSubstr("Already encrypted by Keyward: customers.ssn_enc (120 of 120"));
  EXPECT_THAT(r.out, Not(HasSubstr("order_ref")));
  EXPECT_THAT(r.out, HasSubstr("written to " + schema));
  const std::string draft = ReadFileOrDie(schema);
  EXPECT_THAT(draft,
              StartsWith("# Draft from `keyward classify scan` on " + url_));
  ExpectNoPlantedValue(draft);

  // '-' puts only the schema on stdout.
  r = Keyward({"classify", "scan", "--db", url_, "--schema-out", "-"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("# Draft from"));
  EXPECT_THAT(r.err, HasSubstr("customers.card"));
}

TEST_F(ClassifyCliTest, ExitCodes) {
  EXPECT_EQ(Keyward({"classify", "scan"}).exit_code, 2);  // --db is required
  ProcessResult r = Keyward({"classify", "scan", "--db", "mysql://u:pw@h/db"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("sqlite:PATH"));
  EXPECT_THAT(r.err, Not(HasSubstr("pw@")));
  EXPECT_EQ(
      Keyward({"classify", "scan", "--db", url_, "--sample", "0"}).exit_code,
      2);
  EXPECT_EQ(
      Keyward({"classify", "scan", "--db", url_, "--json", "--schema-out", "-"})
          .exit_code,
      2);
  r = Keyward({"classify", "scan", "--db", "sqlite:" + dir_.File("absent.db")});
  EXPECT_EQ(r.exit_code, 6);
  EXPECT_THAT(r.err, HasSubstr("no SQLite database"));
  EXPECT_EQ(
      Keyward({"classify", "scan", "--db", url_, "--table", "nope"}).exit_code,
      6);
  r = Keyward({"classify", "scan", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("--schema-out"));
}

}  // namespace
}  // namespace keyward
