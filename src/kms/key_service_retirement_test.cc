// KeyService: the version retirement gate and its evidence, and the drill
// samples that prove each version still decrypts.
#include <string>

#include "keyward/message.h"
#include "kms/key_service_fixture.h"

namespace keyward::kms {
namespace {

using keystore::Key;
using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;

TEST_P(KeyServiceTest, EveryNewVersionGetsADrillSampleThatDecrypts) {
  MustCreate("k");
  KW_ASSERT_OK(svc_->RotateKey("k").status());
  KW_ASSERT_OK_AND_ASSIGN(Key key, svc_->GetKey("k"));
  ASSERT_EQ(key.versions.size(), 2u);
  for (const auto& v : key.versions) {
    ASSERT_FALSE(v.drill_sample.empty()) << v.version;
    KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(v.drill_sample));
    EXPECT_EQ(info.key.key_version, v.version);
    KW_ASSERT_OK_AND_ASSIGN(SecretData pt, svc_->Decrypt("k", v.drill_sample, info.context));
    EXPECT_EQ(pt.AsStringView(), KeyService::DrillPlaintext("k", v.version));
    // Every encryption under a KEK counts toward the version's limit, the
    // drill sample's wrap included.
    EXPECT_EQ(v.usage.data_keys_issued, 1u);
  }
  // Nor is opening them a use of the version: the drill does not hold the
  // retirement gate shut.
  KW_ASSERT_OK(svc_->FlushUsage());
  KW_ASSERT_OK_AND_ASSIGN(key, svc_->GetKey("k"));
  for (const auto& v : key.versions) {
    EXPECT_FALSE(v.usage.last_decrypt.has_value()) << v.version;
    EXPECT_EQ(v.usage.decrypts, 0u) << v.version;
  }
  KW_EXPECT_OK(svc_->CheckRetirement("k", 1));
}

TEST_P(KeyServiceTest, TheRetirementGateWantsZeroRowsAndAQuietPeriod) {
  MustCreate("k");
  KW_ASSERT_OK_AND_ASSIGN(DataKey dk, svc_->GenerateDataKey("k", {}));
  KW_ASSERT_OK(svc_->RotateKey("k").status());
  // No reports, but version 1 decrypted just now.
  KW_ASSERT_OK(svc_->DecryptDataKey(dk.wrapped, {}).status());
  EXPECT_THAT(svc_->DisableVersion("k", 1),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("quiet period")));
  clock_.Advance(absl::Hours(24 * 7) + absl::Seconds(1));
  KW_EXPECT_OK(svc_->CheckRetirement("k", 1));
  // A data set still holding rows on version 1 keeps it.
  keystore::DataSetReport r;
  r.data_set = "sqlite:/srv/app.db#orders.card";
  r.key_name = "k";
  r.rows_per_version = {{1, 3}, {2, 97}};
  r.rows_total = 100;
  KW_ASSERT_OK(svc_->ReportDataSet(r));
  EXPECT_THAT(svc_->DisableVersion("k", 1),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("3 row(s) in data set sqlite:/srv/app.db#orders.card")));
  EXPECT_THAT(svc_->ScheduleVersionDestruction("k", 1, std::nullopt, false),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("row(s)")));
  r.rows_per_version = {{1, 0}, {2, 100}};
  KW_ASSERT_OK(svc_->ReportDataSet(r));
  KW_EXPECT_OK(svc_->DisableVersion("k", 1).status());
  // Reports must name real versions.
  r.rows_per_version = {{7, 1}};
  EXPECT_THAT(svc_->ReportDataSet(r), StatusIs(absl::StatusCode::kInvalidArgument));
  // Force goes past the gate.
  KW_ASSERT_OK(svc_->EnableVersion("k", 1).status());
  KW_ASSERT_OK(svc_->DecryptDataKey(dk.wrapped, {}).status());
  EXPECT_FALSE(svc_->DisableVersion("k", 1).ok());
  KW_EXPECT_OK(svc_->DisableVersion("k", 1, /*force=*/true).status());
}

}  // namespace
}  // namespace keyward::kms
