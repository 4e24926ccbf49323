// KeyService: declaring a key version compromised.
#include <string>

#include "kms/key_service_fixture.h"

namespace keyward::kms {
namespace {

using keystore::Key;
using keystore::VersionState;
using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;

TEST_P(KeyServiceTest, CompromisingThePrimaryStopsItWrappingAndKeepsItDecrypting) {
  MustCreate("k");
  const EncryptionContext ctx = {{"tenant", "acme"}};
  KW_ASSERT_OK_AND_ASSIGN(DataKey before, svc_->GenerateDataKey("k", ctx));
  ASSERT_EQ(before.key.key_version, 1u);
  KW_ASSERT_OK(svc_->ReportDataSet({"sqlite:/a.db#t.c", "k", {{1, 7}}, 7, {}, "app"}));
  KW_ASSERT_OK(svc_->ReportDataSet({"sqlite:/b.db#t.c", "k", {{1, 0}}, 0, {}, "app"}));

  KW_ASSERT_OK_AND_ASSIGN(CompromiseResult r,
                          svc_->CompromiseVersion("k", 1, "INC-7: backup leaked", "admin"));
  EXPECT_FALSE(r.already);
  EXPECT_EQ(r.new_primary, 2u);
  EXPECT_EQ(r.key.primary_version, 2u);
  ASSERT_EQ(r.key.versions.size(), 2u);
  EXPECT_EQ(r.key.versions[0].state, VersionState::kDecryptOnly);
  ASSERT_TRUE(r.key.versions[0].compromise.has_value());
  EXPECT_EQ(r.key.versions[0].compromise->reason, "INC-7: backup leaked");
  EXPECT_EQ(r.key.versions[0].compromise->by, "admin");
  ASSERT_EQ(r.data_sets.size(), 1u);  // only the one still holding rows on 1
  EXPECT_EQ(r.data_sets[0].data_set, "sqlite:/a.db#t.c");
  EXPECT_TRUE(svc_->IsCompromised("k", 1));
  EXPECT_FALSE(svc_->IsCompromised("k", 2));

  // New data keys come from version 2; old ones still unwrap.
  KW_ASSERT_OK_AND_ASSIGN(DataKey after, svc_->GenerateDataKey("k", ctx));
  EXPECT_EQ(after.key.key_version, 2u);
  KW_ASSERT_OK_AND_ASSIGN(SecretData dk, svc_->DecryptDataKey(before.wrapped, ctx));
  EXPECT_EQ(dk.AsStringView(), before.plaintext.AsStringView());
  // Rewrapping moves it off the compromised version.
  KW_ASSERT_OK_AND_ASSIGN(WrappedKey moved, svc_->ReWrapDataKey(before.wrapped, ctx));
  EXPECT_EQ(moved.key.key_version, 2u);

  // It can never come back as a wrapping version.
  EXPECT_THAT(svc_->SetPrimaryVersion("k", 1),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("compromised")));
  KW_ASSERT_OK_AND_ASSIGN(Key enabled, svc_->EnableVersion("k", 1));
  EXPECT_EQ(enabled.versions[0].state, VersionState::kDecryptOnly);

  // Durable: a restarted service (nothing cached) still knows.
  Restart();
  EXPECT_TRUE(svc_->IsCompromised("k", 1));
  KW_ASSERT_OK_AND_ASSIGN(Key stored, store_->GetKey("k"));
  ASSERT_TRUE(stored.versions[0].compromise.has_value());

  // Declaring it again changes nothing: the first declaration stands.
  KW_ASSERT_OK_AND_ASSIGN(CompromiseResult again,
                          svc_->CompromiseVersion("k", 1, "another reason", "someone"));
  EXPECT_TRUE(again.already);
  EXPECT_EQ(again.new_primary, 0u);
  EXPECT_EQ(again.key.versions.size(), 2u);
  EXPECT_EQ(again.key.versions[0].compromise->reason, "INC-7: backup leaked");
}

TEST_P(KeyServiceTest, CompromisingAnOlderVersionLeavesThePrimaryAlone) {
  MustCreate("k");
  KW_ASSERT_OK(svc_->RotateKey("k").status());
  KW_ASSERT_OK(svc_->EnableVersion("k", 1).status());  // enabled, not primary
  KW_ASSERT_OK_AND_ASSIGN(CompromiseResult r, svc_->CompromiseVersion("k", 1, "INC-8", "a"));
  EXPECT_EQ(r.new_primary, 0u);
  EXPECT_EQ(r.key.primary_version, 2u);
  EXPECT_EQ(r.key.versions.size(), 2u);
  EXPECT_EQ(r.key.versions[0].state, VersionState::kDecryptOnly);
}

TEST_P(KeyServiceTest, CompromiseRefusesBadRequests) {
  MustCreate("k");
  EXPECT_THAT(svc_->CompromiseVersion("k", 1, "", "a"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("reason")));
  EXPECT_THAT(svc_->CompromiseVersion("k", 1, std::string(2000, 'r'), "a"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(svc_->CompromiseVersion("k", 9, "x", "a"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(svc_->CompromiseVersion("nope", 1, "x", "a"),
              StatusIs(absl::StatusCode::kNotFound));
  KW_ASSERT_OK_AND_ASSIGN(Key key, svc_->GetKey("k"));
  EXPECT_FALSE(key.versions[0].compromise.has_value());
  EXPECT_EQ(key.versions.size(), 1u);
}

}  // namespace
}  // namespace keyward::kms
