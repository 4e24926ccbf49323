// KeyService: keys and the version lifecycle — rotation, enabling and
// disabling, destruction — and the environment's rules at start.
#include "kms/key_service.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kms/key_service_fixture.h"

namespace keyward::kms {
namespace {

using keystore::Key;
using keystore::KekProtection;
using keystore::VersionState;
using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;

TEST_P(KeyServiceTest, RotateKeyIfChecksInsideTheTransaction) {
  MustCreate("k");
  KW_ASSERT_OK_AND_ASSIGN(Key before, svc_->GetKey("k"));
  KW_ASSERT_OK_AND_ASSIGN(auto none, svc_->RotateKeyIf("k", [](const Key&) { return false; }));
  EXPECT_FALSE(none.has_value());
  KW_ASSERT_OK_AND_ASSIGN(Key same, svc_->GetKey("k"));
  EXPECT_EQ(same.revision, before.revision);  // nothing written
  KW_ASSERT_OK_AND_ASSIGN(auto rotated,
                          svc_->RotateKeyIf("k", [](const Key& k) { return k.primary_version == 1; }));
  ASSERT_TRUE(rotated.has_value());
  EXPECT_EQ(rotated->primary_version, 2u);
  KW_ASSERT_OK_AND_ASSIGN(auto again,
                          svc_->RotateKeyIf("k", [](const Key& k) { return k.primary_version == 1; }));
  EXPECT_FALSE(again.has_value());
}

TEST_P(KeyServiceTest, RotationKeepsOldDataDecryptable) {
  MustCreate("k");
  KW_ASSERT_OK_AND_ASSIGN(DataKey v1, svc_->GenerateDataKey("k", {}));
  KW_ASSERT_OK_AND_ASSIGN(Key rotated, svc_->RotateKey("k"));
  EXPECT_EQ(rotated.primary_version, 2u);
  EXPECT_EQ(rotated.versions[0].state, VersionState::kDecryptOnly);
  EXPECT_EQ(rotated.versions[1].state, VersionState::kEnabled);
  for (const auto& v : rotated.versions) EXPECT_TRUE(v.sealed_kek.empty());
  KW_ASSERT_OK_AND_ASSIGN(DataKey v2, svc_->GenerateDataKey("k", {}));
  EXPECT_EQ(v2.key.key_version, 2u);
  KW_EXPECT_OK(svc_->DecryptDataKey(v1.wrapped, {}).status());
  // ReWrap moves a data key to the primary without showing it.
  KW_ASSERT_OK_AND_ASSIGN(WrappedKey rewrapped, svc_->ReWrapDataKey(v1.wrapped, {}));
  EXPECT_EQ(rewrapped.key.key_version, 2u);
  KW_ASSERT_OK_AND_ASSIGN(SecretData a, svc_->DecryptDataKey(v1.wrapped, {}));
  KW_ASSERT_OK_AND_ASSIGN(SecretData b, svc_->DecryptDataKey(rewrapped.wrapped, {}));
  EXPECT_TRUE(ConstantTimeEquals(a, b));
  // Undo the rotation.
  KW_ASSERT_OK(svc_->EnableVersion("k", 1).status());
  KW_ASSERT_OK_AND_ASSIGN(Key back, svc_->SetPrimaryVersion("k", 1));
  EXPECT_EQ(back.primary_version, 1u);
  EXPECT_EQ(back.versions[1].state, VersionState::kDecryptOnly);
}

TEST_P(KeyServiceTest, DisabledVersionsRefuseWithKeyAndVersionNamed) {
  MustCreate("k");
  KW_ASSERT_OK_AND_ASSIGN(DataKey v1, svc_->GenerateDataKey("k", {}));
  EXPECT_THAT(svc_->DisableVersion("k", 1),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("primary")));
  KW_ASSERT_OK(svc_->RotateKey("k").status());
  KW_ASSERT_OK(svc_->DisableVersion("k", 1).status());
  EXPECT_THAT(svc_->DecryptDataKey(v1.wrapped, {}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("key k version 1 is disabled")));
  KW_ASSERT_OK(svc_->EnableVersion("k", 1).status());
  KW_EXPECT_OK(svc_->DecryptDataKey(v1.wrapped, {}).status());
}

TEST_P(KeyServiceTest, DestructionWaitsCanBeCancelledAndErasesMaterial) {
  MustCreate("k");
  KW_ASSERT_OK_AND_ASSIGN(DataKey v1, svc_->GenerateDataKey("k", {}));
  EXPECT_THAT(svc_->ScheduleVersionDestruction("k", 1, std::nullopt, false),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  KW_ASSERT_OK(svc_->RotateKey("k").status());
  EXPECT_THAT(svc_->ScheduleVersionDestruction("k", 1, absl::Seconds(5), false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least")));
  KW_ASSERT_OK_AND_ASSIGN(Key k, svc_->ScheduleVersionDestruction("k", 1, std::nullopt, false));
  EXPECT_EQ(k.versions[0].state, VersionState::kPendingDestruction);
  EXPECT_EQ(*k.versions[0].destroy_after, clock_.Now() + absl::Hours(24 * 30));
  EXPECT_THAT(svc_->DecryptDataKey(v1.wrapped, {}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("scheduled for destruction")));
  KW_ASSERT_OK(svc_->CancelVersionDestruction("k", 1).status());
  // Cancelling restores the state the version had (decrypt-only after the
  // rotation), not a blanket "disabled": its data stays readable.
  KW_ASSERT_OK_AND_ASSIGN(Key cancelled, svc_->GetKey("k"));
  EXPECT_EQ(cancelled.versions[0].state, VersionState::kDecryptOnly);
  // And a disabled version comes back disabled.
  KW_ASSERT_OK(svc_->DisableVersion("k", 1, /*force=*/true).status());
  KW_ASSERT_OK(svc_->ScheduleVersionDestruction("k", 1, std::nullopt, false).status());
  KW_ASSERT_OK(svc_->CancelVersionDestruction("k", 1).status());
  KW_ASSERT_OK_AND_ASSIGN(cancelled, svc_->GetKey("k"));
  EXPECT_EQ(cancelled.versions[0].state, VersionState::kDisabled);
  KW_ASSERT_OK(svc_->ScheduleVersionDestruction("k", 1, absl::Hours(1), false).status());
  clock_.Advance(absl::Minutes(59));
  KeyService::DestructionRun none = svc_->ProcessDueDestructions();
  KW_ASSERT_OK(none.status);
  EXPECT_TRUE(none.destroyed.empty());
  clock_.Advance(absl::Minutes(2));
  // The HSM fails midway: the version is destroyed in the store all the
  // same, and reported; its HSM object goes on the next run.
  const bool hsm = GetParam() == KekProtection::kHsmResident;
  if (hsm) root_->SetAvailable(false);
  KeyService::DestructionRun one = svc_->ProcessDueDestructions();
  ASSERT_EQ(one.destroyed.size(), 1u);
  EXPECT_EQ(one.destroyed[0].version, 1u);
  if (hsm) {
    EXPECT_EQ(one.status.code(), absl::StatusCode::kUnavailable) << one.status;
    EXPECT_EQ(root_->resident_key_count(), 2u);
    root_->SetAvailable(true);
    KeyService::DestructionRun retry = svc_->ProcessDueDestructions();
    KW_EXPECT_OK(retry.status);
    EXPECT_TRUE(retry.destroyed.empty()) << "reported twice";
    EXPECT_EQ(root_->resident_key_count(), 1u);  // only v2 remains
  } else {
    KW_EXPECT_OK(one.status);
  }
  KW_ASSERT_OK_AND_ASSIGN(Key raw, store_->GetKey("k"));
  EXPECT_EQ(raw.versions[0].state, VersionState::kDestroyed);
  EXPECT_TRUE(raw.versions[0].sealed_kek.empty());
  EXPECT_TRUE(raw.versions[0].hsm_key_id.empty());
  KW_ASSERT_OK_AND_ASSIGN(std::vector<keystore::VersionRef> left,
                          store_->ListDueDestructions(clock_.Now()));
  EXPECT_TRUE(left.empty());
  EXPECT_THAT(svc_->DecryptDataKey(v1.wrapped, {}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("destroyed")));
  EXPECT_THAT(svc_->EnableVersion("k", 1),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_P(KeyServiceTest, ShreddingTheLastDecryptableVersionNeedsForce) {
  MustCreate("k");
  EXPECT_THAT(svc_->ScheduleVersionDestruction("k", 1, std::nullopt, false),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("--force")));
  KW_ASSERT_OK(svc_->ScheduleVersionDestruction("k", 1, std::nullopt, true).status());
  EXPECT_THAT(svc_->GenerateDataKey("k", {}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("no enabled primary")));
  KW_ASSERT_OK_AND_ASSIGN(Key restored, svc_->CancelVersionDestruction("k", 1));
  EXPECT_EQ(restored.versions[0].state, VersionState::kEnabled);
  KW_EXPECT_OK(svc_->GenerateDataKey("k", {}).status());
}

TEST_P(KeyServiceTest, KeyAdministration) {
  KW_ASSERT_OK_AND_ASSIGN(
      Key k, svc_->CreateKey({.name = "team/a",
                              .labels = {{"owner", "payments"}},
                              .rotation_period = absl::Hours(24 * 90)}));
  EXPECT_EQ(k.rotation_period, absl::Hours(24 * 90));
  EXPECT_THAT(svc_->CreateKey({.name = "team/a"}),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(svc_->CreateKey({.name = "bad name"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(svc_->CreateKey({.name = "x", .labels = {{"Bad", "v"}}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  KW_ASSERT_OK_AND_ASSIGN(
      Key updated, svc_->UpdateKey("team/a", {.rotation_period = absl::Hours(24),
                                              .set_labels = {{"tier", "1"}},
                                              .remove_labels = {"owner"}}));
  EXPECT_EQ(updated.rotation_period, absl::Hours(24));
  EXPECT_EQ(updated.labels, (std::map<std::string, std::string>{{"tier", "1"}}));
  MustCreate("team/b");
  MustCreate("other");
  KW_ASSERT_OK_AND_ASSIGN(keystore::KeyPage page, svc_->ListKeys("team/", 10, ""));
  ASSERT_EQ(page.keys.size(), 2u);
  for (const Key& key : page.keys) {
    for (const auto& v : key.versions) EXPECT_TRUE(v.sealed_kek.empty());
  }
  EXPECT_THAT(svc_->GetKey("nope"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(svc_->GenerateDataKey("nope", {}), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(KeyServiceTest, HsmOutageIsUnavailableAndRecovers) {
  MustCreate("k");
  KW_ASSERT_OK_AND_ASSIGN(DataKey dk, svc_->GenerateDataKey("k", {}));
  root_->SetAvailable(false);
  EXPECT_THAT(svc_->CreateKey({.name = "new"}), StatusIs(absl::StatusCode::kUnavailable));
  if (GetParam() == KekProtection::kHsmResident) {
    EXPECT_THAT(svc_->DecryptDataKey(dk.wrapped, {}),
                StatusIs(absl::StatusCode::kUnavailable));
  } else {
    // The KEK is already in memory: data keys keep flowing.
    KW_EXPECT_OK(svc_->DecryptDataKey(dk.wrapped, {}).status());
  }
  root_->SetAvailable(true);
  KW_EXPECT_OK(svc_->DecryptDataKey(dk.wrapped, {}).status());
}

INSTANTIATE_TEST_SUITE_P(Protections, KeyServiceTest,
                         ::testing::Values(KekProtection::kWrappedByRoot,
                                           KekProtection::kHsmResident),
                         [](const auto& param_info) {
                           return param_info.param == KekProtection::kWrappedByRoot
                                      ? std::string("WrappedByRoot")
                                      : std::string("HsmResident");
                         });

TEST(KeyServiceEnvironmentTest, ProductionRefusesASoftwareHsmUnlessAllowed) {
  KeyServiceOptions o;
  o.environment = "production";
  auto refused = KeyService::Create(
      o, std::make_unique<keystore::MemoryKeyStore>("production"),
      std::make_unique<hsm::testing::SoftwareRootOfTrust>());
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kFailedPrecondition,
                                HasSubstr("allow_software_hsm")));
  o.allow_software_hsm = true;
  KW_EXPECT_OK(KeyService::Create(o, std::make_unique<keystore::MemoryKeyStore>("production"),
                                  std::make_unique<hsm::testing::SoftwareRootOfTrust>())
                   .status());
  o.environment = "dev";
  EXPECT_THAT(KeyService::Create(o, std::make_unique<keystore::MemoryKeyStore>("staging"),
                                 std::make_unique<hsm::testing::SoftwareRootOfTrust>()),
              HasErrorCode(ErrorCode::kEnvironmentMismatch));
}

}  // namespace
}  // namespace keyward::kms
