#include "kms/key_service.h"

#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "crypto/signature.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hsm/pkcs11_root_of_trust.h"
#include "testing/software_root_of_trust.h"
#include "keystore/fault_injecting_key_store.h"
#include "keystore/memory_key_store.h"
#include "keystore/sqlite_key_store.h"
#include "keyward/errors.h"
#include "keyward/message.h"
#include "kms/kms_keyring.h"
#include "testing/softhsm.h"
#include "testing/status_matchers.h"
#include "testing/subprocess.h"

namespace keyward::kms {
namespace {

using keystore::Key;
using keystore::KekProtection;
using keystore::VersionState;
using ::keyward::testing::IsOk;
using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;

MATCHER_P(HasErrorCode, code, "") {
  return GetErrorCode(::keyward::testing::GetStatus(arg)) == code;
}

class KeyServiceTest : public ::testing::TestWithParam<KekProtection> {
 protected:
  void SetUp() override {
    auto root = std::make_unique<hsm::testing::SoftwareRootOfTrust>();
    root_ = root.get();
    KeyServiceOptions o;
    o.environment = "dev";
    o.default_protection = GetParam();
    o.min_destruction_wait = absl::Minutes(1);
    o.usage_flush_interval = absl::ZeroDuration();
    o.clock = &clock_;
    store_ = std::make_shared<keystore::MemoryKeyStore>("dev");
    auto svc = KeyService::Create(o, store_, std::move(root));
    ASSERT_TRUE(svc.ok()) << svc.status();
    svc_ = std::move(*svc);
  }
  Key MustCreate(const std::string& name) {
    auto k = svc_->CreateKey({.name = name});
    EXPECT_TRUE(k.ok()) << k.status();
    return *k;
  }
  FakeClock clock_;
  hsm::testing::SoftwareRootOfTrust* root_ = nullptr;
  std::shared_ptr<keystore::KeyStore> store_;  // what the core stored, read directly
  std::unique_ptr<KeyService> svc_;
};

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

TEST_P(KeyServiceTest, DataKeysRoundTripAndBindTheirContext) {
  MustCreate("payments/cards");
  const EncryptionContext ctx{{"tenant", "acme"}};
  KW_ASSERT_OK_AND_ASSIGN(DataKey dk, svc_->GenerateDataKey("payments/cards", ctx));
  EXPECT_EQ(dk.plaintext.size(), 32u);
  EXPECT_EQ(dk.key.key_name, "payments/cards");
  EXPECT_EQ(dk.key.key_version, 1u);
  EXPECT_EQ(dk.key.environment, "dev");
  KW_ASSERT_OK_AND_ASSIGN(SecretData back, svc_->DecryptDataKey(dk.wrapped, ctx));
  EXPECT_TRUE(ConstantTimeEquals(back, dk.plaintext));

  EXPECT_THAT(svc_->DecryptDataKey(dk.wrapped, {{"tenant", "globex"}}),
              HasErrorCode(ErrorCode::kContextMismatch));
  EXPECT_THAT(svc_->DecryptDataKey(dk.wrapped, {}),
              HasErrorCode(ErrorCode::kContextMismatch));
  std::string tampered = dk.wrapped;
  tampered.back() ^= 1;
  EXPECT_THAT(svc_->DecryptDataKey(tampered, ctx),
              HasErrorCode(ErrorCode::kAuthenticationFailed));
  EXPECT_THAT(svc_->DecryptDataKey("garbage", ctx),
              HasErrorCode(ErrorCode::kMalformedHeader));
  KW_ASSERT_OK_AND_ASSIGN(WrappedKey no_pt,
                          svc_->GenerateDataKeyWithoutPlaintext("payments/cards", ctx));
  KW_EXPECT_OK(svc_->DecryptDataKey(no_pt.wrapped, ctx).status());
}

TEST_P(KeyServiceTest, WrappedKeysCannotMoveBetweenKeysVersionsOrEnvironments) {
  MustCreate("a");
  MustCreate("b");
  KW_ASSERT_OK_AND_ASSIGN(DataKey dk, svc_->GenerateDataKey("a", {}));
  KW_ASSERT_OK_AND_ASSIGN(DataKeyBlob blob, DecodeBlob(dk.wrapped));
  DataKeyBlob moved = blob;
  moved.key_name = "b";
  EXPECT_THAT(svc_->DecryptDataKey(EncodeBlob(moved), {}),
              HasErrorCode(ErrorCode::kAuthenticationFailed));
  KW_ASSERT_OK(svc_->RotateKey("a").status());
  moved = blob;
  moved.key_version = 2;
  EXPECT_THAT(svc_->DecryptDataKey(EncodeBlob(moved), {}),
              HasErrorCode(ErrorCode::kAuthenticationFailed));
  moved = blob;
  moved.environment = "production";
  auto env = svc_->DecryptDataKey(EncodeBlob(moved), {});
  EXPECT_THAT(env, HasErrorCode(ErrorCode::kEnvironmentMismatch));
  EXPECT_THAT(env, StatusIs(absl::StatusCode::kFailedPrecondition,
                            HasSubstr("'production'")));
  EXPECT_THAT(env, StatusIs(absl::StatusCode::kFailedPrecondition,
                            HasSubstr("'dev'")));
  moved = blob;
  moved.key_version = 9;
  EXPECT_THAT(svc_->DecryptDataKey(EncodeBlob(moved), {}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no version 9")));
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

TEST_P(KeyServiceTest, UsageIsCountedAndLimited) {
  auto root = std::make_unique<hsm::testing::SoftwareRootOfTrust>();
  KeyServiceOptions o;
  o.environment = "dev";
  o.default_protection = GetParam();
  o.max_data_keys_per_version = 5;
  o.usage_flush_interval = absl::ZeroDuration();
  o.clock = &clock_;
  std::shared_ptr<keystore::KeyStore> store = std::make_shared<keystore::MemoryKeyStore>("dev");
  KW_ASSERT_OK_AND_ASSIGN(auto svc, KeyService::Create(o, store, std::move(root)));
  // Creating the key wrapped its drill sample: 1 of the 5.
  KW_ASSERT_OK(svc->CreateKey({.name = "k"}).status());
  KW_ASSERT_OK_AND_ASSIGN(auto three, svc->GenerateDataKeys("k", {}, 3));
  KW_ASSERT_OK(svc->DecryptDataKey(three[0].wrapped, {}).status());
  EXPECT_THAT(svc->GenerateDataKeys("k", {}, 2),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("rotate")));
  // A rewrap is an encryption under the KEK too: it takes the last one.
  KW_ASSERT_OK(svc->ReWrapDataKey(three[1].wrapped, {}).status());
  EXPECT_FALSE(svc->GenerateDataKey("k", {}).ok());
  EXPECT_FALSE(svc->ReWrapDataKey(three[2].wrapped, {}).ok());
  KW_ASSERT_OK_AND_ASSIGN(Key before_flush, svc->GetKey("k"));
  EXPECT_EQ(before_flush.versions[0].usage.data_keys_issued, 5u);
  // One decrypt and the two rewraps' unwraps.
  EXPECT_EQ(before_flush.versions[0].usage.decrypts, 3u);
  KW_ASSERT_OK(svc->FlushUsage());
  // The store holds what was reserved: never less than what was used.
  KW_ASSERT_OK_AND_ASSIGN(Key stored, store->GetKey("k"));
  EXPECT_EQ(stored.versions[0].usage.data_keys_issued, 5u);
  EXPECT_EQ(stored.versions[0].usage.last_used, clock_.Now());
  KW_ASSERT_OK(svc->RotateKey("k").status());
  KW_EXPECT_OK(svc->GenerateDataKey("k", {}).status());
}

TEST_P(KeyServiceTest, BatchesAndSmallPayloads) {
  MustCreate("k");
  const EncryptionContext ctx{{"table", "t"}};
  KW_ASSERT_OK_AND_ASSIGN(auto keys, svc_->GenerateDataKeys("k", ctx, 100));
  std::vector<DecryptRequest> requests;
  for (const auto& dk : keys) requests.push_back({dk.wrapped, ctx});
  requests.push_back({"broken", ctx});
  KW_ASSERT_OK_AND_ASSIGN(auto results, svc_->DecryptDataKeys(requests));
  ASSERT_EQ(results.size(), 101u);
  for (size_t i = 0; i < 100; ++i) {
    ASSERT_TRUE(results[i].ok());
    EXPECT_TRUE(ConstantTimeEquals(*results[i], keys[i].plaintext));
  }
  EXPECT_FALSE(results[100].ok());
  EXPECT_FALSE(svc_->GenerateDataKeys("k", ctx, 10001).ok());

  KW_ASSERT_OK_AND_ASSIGN(std::string message, svc_->Encrypt("k", "hello", ctx));
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(message));
  EXPECT_EQ(info.key.key_name, "k");
  EXPECT_EQ(info.key.environment, "dev");
  EXPECT_EQ(info.data_keys[0].provider_id, "kms");
  KW_ASSERT_OK_AND_ASSIGN(SecretData pt, svc_->Decrypt("k", message, ctx));
  EXPECT_EQ(pt.AsStringView(), "hello");
  EXPECT_THAT(svc_->Decrypt("k", message, {{"table", "u"}}),
              HasErrorCode(ErrorCode::kContextMismatch));
  EXPECT_THAT(svc_->Encrypt("k", std::string(KeyService::kMaxPayload + 1, 'x'), ctx),
              HasErrorCode(ErrorCode::kLimitExceeded));
  // A message rewrapped to the new primary inside the KMS, body untouched.
  KW_ASSERT_OK(svc_->RotateKey("k").status());
  LocalKmsKeyring any(svc_.get(), ""), k(svc_.get(), "k");
  const KeyUnwrapper* from[] = {&any};
  const KeyWrapper* to[] = {&k};
  KW_ASSERT_OK_AND_ASSIGN(std::string moved, RewrapMessage(message, from, to));
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo moved_info, InspectMessage(moved));
  EXPECT_EQ(moved_info.key.key_version, 2u);
  EXPECT_EQ(moved_info.data_keys.size(), 1u);
  KW_EXPECT_OK(svc_->Decrypt("k", moved, ctx).status());
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

// Every write of a rotation, destruction and batch, interrupted before or
// after it commits: the store stays valid, a fresh service over it works,
// and every data key issued before the fault still decrypts.
TEST(KeyServiceCrashTest, EveryInterruptedWriteLeavesAConsistentStore) {
  for (auto mode : {keystore::FaultInjectingKeyStore::Mode::kBeforeCommit,
                    keystore::FaultInjectingKeyStore::Mode::kAfterCommit}) {
    for (int fail_at = 1; fail_at <= 6; ++fail_at) {
      SCOPED_TRACE(absl::StrCat("fail write ", fail_at, " mode ",
                                static_cast<int>(mode)));
      auto inner = std::make_shared<keystore::MemoryKeyStore>("dev");
      auto faulty = std::make_unique<keystore::FaultInjectingKeyStore>(inner);
      auto* fault = faulty.get();
      // The same HSM survives the "crash".
      auto shared_root = std::make_shared<hsm::testing::SoftwareRootOfTrust>();
      class Borrowed final : public hsm::RootOfTrust {
       public:
        explicit Borrowed(std::shared_ptr<hsm::RootOfTrust> r) : r_(std::move(r)) {}
        hsm::HsmInfo Info() const override { return r_->Info(); }
        absl::StatusOr<SecretData> GenerateRandom(size_t n) override { return r_->GenerateRandom(n); }
        absl::StatusOr<std::string> Seal(const SecretData& m, absl::string_view a) override { return r_->Seal(m, a); }
        absl::StatusOr<SecretData> Unseal(absl::string_view s, absl::string_view a) override { return r_->Unseal(s, a); }
        absl::StatusOr<std::string> CreateResidentKey(absl::string_view l) override { return r_->CreateResidentKey(l); }
        absl::StatusOr<std::string> ResidentSeal(absl::string_view i, const SecretData& m, absl::string_view a) override { return r_->ResidentSeal(i, m, a); }
        absl::StatusOr<SecretData> ResidentUnseal(absl::string_view i, absl::string_view s, absl::string_view a) override { return r_->ResidentUnseal(i, s, a); }
        absl::Status DestroyResidentKey(absl::string_view i) override { return r_->DestroyResidentKey(i); }
        absl::Status CheckHealth() override { return r_->CheckHealth(); }
        absl::StatusOr<std::string> GetOrCreateSigningKey(absl::string_view l) override { return r_->GetOrCreateSigningKey(l); }
        absl::StatusOr<std::string> Sign(absl::string_view l, absl::string_view d) override { return r_->Sign(l, d); }
       private:
        std::shared_ptr<hsm::RootOfTrust> r_;
      };
      KeyServiceOptions o;
      o.environment = "dev";
      o.min_destruction_wait = absl::Minutes(1);
      o.usage_flush_interval = absl::ZeroDuration();
      FakeClock clock;
      o.clock = &clock;
      std::vector<std::pair<std::string, DataKey>> issued;
      {
        KW_ASSERT_OK_AND_ASSIGN(
            auto svc, KeyService::Create(o, std::move(faulty),
                                         std::make_unique<Borrowed>(shared_root)));
        KW_ASSERT_OK(svc->CreateKey({.name = "k"}).status());
        KW_ASSERT_OK(svc->RotateKey("k").status());
        auto batch = svc->GenerateDataKeys("k", {{"b", "1"}}, 20);
        ASSERT_TRUE(batch.ok());
        for (auto& dk : *batch) issued.push_back({"1", std::move(dk)});
        fault->FailWrite(fail_at, mode);
        // A sequence of writes, any of which may be the one that "crashes".
        (void)svc->RotateKey("k");
        (void)svc->FlushUsage();
        (void)svc->ScheduleVersionDestruction("k", 1, absl::Minutes(1), false);
        clock.Advance(absl::Minutes(2));
        (void)svc->ProcessDueDestructions();
        (void)svc->RotateKey("k");
        (void)svc->DisableVersion("k", 2);
        auto more = svc->GenerateDataKeys("k", {{"b", "1"}}, 5);
        if (more.ok()) {
          for (auto& dk : *more) issued.push_back({"1", std::move(dk)});
        }
        EXPECT_TRUE(fault->fired()) << "the fault was never reached";
      }
      // "Restart": a new service over the same store and HSM.
      KeyServiceOptions o2 = o;
      KW_ASSERT_OK_AND_ASSIGN(
          auto restarted,
          KeyService::Create(o2, std::make_unique<keystore::FaultInjectingKeyStore>(inner),
                             std::make_unique<Borrowed>(shared_root)));
      KW_ASSERT_OK_AND_ASSIGN(Key key, restarted->GetKey("k"));
      KW_ASSERT_OK(keystore::ValidateKey(key));
      // Make every version that was not destroyed on purpose usable, then
      // check every issued data key.
      for (const auto& v : key.versions) {
        if (v.state == VersionState::kPendingDestruction) {
          KW_ASSERT_OK(restarted->CancelVersionDestruction("k", v.version).status());
        }
      }
      KW_ASSERT_OK_AND_ASSIGN(key, restarted->GetKey("k"));
      for (const auto& v : key.versions) {
        if (v.state == VersionState::kDisabled) {
          KW_ASSERT_OK(restarted->EnableVersion("k", v.version).status());
        }
      }
      KW_ASSERT_OK_AND_ASSIGN(key, restarted->GetKey("k"));
      for (auto& [tag, dk] : issued) {
        const auto* v = key.FindVersion(dk.key.key_version);
        ASSERT_NE(v, nullptr);
        if (v->state == VersionState::kDestroyed) continue;  // on purpose
        auto back = restarted->DecryptDataKey(dk.wrapped, {{"b", "1"}});
        ASSERT_TRUE(back.ok()) << back.status();
        EXPECT_TRUE(ConstantTimeEquals(*back, dk.plaintext));
      }
      KW_EXPECT_OK(restarted->GenerateDataKey("k", {}).status());
    }
  }
}

// The real thing: SQLite on disk and a SoftHSM token.
// After a version is destroyed, its sealed KEK is in none of the store's
// files: not in the database, not in the write-ahead log (where SQLite kept
// older copies of the page), not in the shared-memory index.  The live root
// key could unseal any copy left there.
// A key made for signed messages wraps only data keys bound to a signing
// key: unsigned messages cannot be made under it at all.
TEST_P(KeyServiceTest, KeysForSignedMessagesWrapOnlySigningBoundDataKeys) {
  KW_ASSERT_OK(svc_->CreateKey({.name = "s", .suite = Suite::kAes256GcmHkdfSha256CommitEcdsaP384})
                   .status());
  EXPECT_THAT(svc_->GenerateDataKey("s", {{"t", "1"}}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("signed messages")));
  // keywardd's own messages under it (small payloads, drill samples) are signed.
  KW_ASSERT_OK_AND_ASSIGN(std::string m, svc_->Encrypt("s", "hello", {{"t", "1"}}));
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(m));
  EXPECT_EQ(info.suite, Suite::kAes256GcmHkdfSha256CommitEcdsaP384);
  KW_ASSERT_OK_AND_ASSIGN(SecretData pt, svc_->Decrypt("s", m, {{"t", "1"}}));
  EXPECT_EQ(pt.AsStringView(), "hello");
  KW_ASSERT_OK_AND_ASSIGN(Key key, svc_->GetKey("s"));
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo drill, InspectMessage(key.versions[0].drill_sample));
  EXPECT_EQ(drill.suite, Suite::kAes256GcmHkdfSha256CommitEcdsaP384);
  // With a signing key in the context, data keys are issued.
  KW_ASSERT_OK_AND_ASSIGN(auto signer, crypto::EcdsaP384Signer::Generate());
  KW_EXPECT_OK(svc_->GenerateDataKey(
                       "s", {{kSigningKeyContextKey, absl::Base64Escape(signer->public_key())}})
                   .status());
}

TEST(KeyServiceDestructionTest, DestroyedKeyMaterialIsGoneFromTheStoreFiles) {
  ::keyward::testing::TempDir dir;
  FakeClock clock;
  KeyServiceOptions o;
  o.environment = "dev";
  o.min_destruction_wait = absl::Minutes(1);
  o.usage_flush_interval = absl::ZeroDuration();
  o.clock = &clock;
  KW_ASSERT_OK_AND_ASSIGN(std::shared_ptr<keystore::KeyStore> store,
                          keystore::SqliteKeyStore::Open(dir.File("keys.db"), "dev"));
  KW_ASSERT_OK_AND_ASSIGN(
      auto svc, KeyService::Create(o, store,
                                   std::make_unique<hsm::testing::SoftwareRootOfTrust>()));
  KW_ASSERT_OK(svc->CreateKey({.name = "k"}).status());
  // Many writes that touch the version's page, so SQLite's log holds
  // several copies of it.
  for (int i = 0; i < 8; ++i) {
    KW_ASSERT_OK(svc->UpdateKey("k", {.set_labels = {{"n", absl::StrCat(i)}}}).status());
  }
  KW_ASSERT_OK(svc->RotateKey("k").status());
  KW_ASSERT_OK_AND_ASSIGN(Key stored, store->GetKey("k"));
  const std::string sealed = stored.versions[0].sealed_kek;
  ASSERT_FALSE(sealed.empty());
  auto occurrences = [&] {
    int n = 0;
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::ifstream in(dir.File(absl::StrCat("keys.db", suffix)), std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), {});
      for (size_t at = bytes.find(sealed); at != std::string::npos;
           at = bytes.find(sealed, at + 1)) {
        ++n;
      }
    }
    return n;
  };
  ASSERT_GT(occurrences(), 0) << "the test must see the material before destruction";
  KW_ASSERT_OK(svc->ScheduleVersionDestruction("k", 1, absl::Minutes(1), true).status());
  clock.Advance(absl::Minutes(2));
  KeyService::DestructionRun run = svc->ProcessDueDestructions();
  KW_ASSERT_OK(run.status);
  const std::vector<keystore::VersionRef>& destroyed = run.destroyed;
  ASSERT_EQ(destroyed.size(), 1u);
  EXPECT_EQ(destroyed[0].key_name, "k");
  EXPECT_EQ(destroyed[0].version, 1u);
  EXPECT_EQ(occurrences(), 0) << "copies of the destroyed version's sealed KEK remain";
}

TEST(KeyServiceSoftHsmTest, EndToEndWithSqliteAndSoftHsm) {
  auto token = ::keyward::testing::SoftHsmToken::Create("keyward-kms");
  ASSERT_TRUE(token.ok()) << token.status();
  std::unique_ptr<::keyward::testing::SoftHsmToken> cleanup(*token);
  ::keyward::testing::TempDir dir;
  hsm::Pkcs11Options p;
  p.module_path = ::keyward::testing::kSoftHsmModule;
  p.token_label = cleanup->label();
  p.pin_file = cleanup->pin_file();
  p.root_key_label = "keyward-root/dev";
  KeyServiceOptions o;
  o.environment = "dev";
  o.usage_flush_interval = absl::Milliseconds(50);
  std::string wrapped_old, wrapped_resident;
  SecretData plain_old, plain_resident;
  {
    KW_ASSERT_OK_AND_ASSIGN(auto store, keystore::SqliteKeyStore::Open(dir.File("keys.db"), "dev"));
    KW_ASSERT_OK_AND_ASSIGN(auto root, hsm::OpenPkcs11(p));
    KW_ASSERT_OK_AND_ASSIGN(auto svc, KeyService::Create(o, std::move(store), std::move(root)));
    KW_ASSERT_OK(svc->CreateKey({.name = "payments/cards"}).status());
    KW_ASSERT_OK(svc->CreateKey({.name = "payments/resident",
                                 .protection = KekProtection::kHsmResident})
                     .status());
    KW_ASSERT_OK_AND_ASSIGN(DataKey a, svc->GenerateDataKey("payments/cards", {{"t", "1"}}));
    KW_ASSERT_OK_AND_ASSIGN(DataKey b, svc->GenerateDataKey("payments/resident", {{"t", "1"}}));
    wrapped_old = a.wrapped;
    plain_old = std::move(a.plaintext);
    wrapped_resident = b.wrapped;
    plain_resident = std::move(b.plaintext);
    KW_ASSERT_OK(svc->RotateKey("payments/cards").status());
  }
  // Restart: everything comes back from disk and the token.
  KW_ASSERT_OK_AND_ASSIGN(auto store, keystore::SqliteKeyStore::Open(dir.File("keys.db"), "dev"));
  KW_ASSERT_OK_AND_ASSIGN(auto root, hsm::OpenPkcs11(p));
  KW_ASSERT_OK_AND_ASSIGN(auto svc, KeyService::Create(o, std::move(store), std::move(root)));
  KW_ASSERT_OK_AND_ASSIGN(SecretData a, svc->DecryptDataKey(wrapped_old, {{"t", "1"}}));
  EXPECT_TRUE(ConstantTimeEquals(a, plain_old));
  KW_ASSERT_OK_AND_ASSIGN(SecretData b, svc->DecryptDataKey(wrapped_resident, {{"t", "1"}}));
  EXPECT_TRUE(ConstantTimeEquals(b, plain_resident));
  KW_ASSERT_OK_AND_ASSIGN(Key key, svc->GetKey("payments/cards"));
  EXPECT_EQ(key.primary_version, 2u);
  // One data key and the drill sample's wrap; the unused part of the
  // reservation was given back at exit.
  EXPECT_EQ(key.versions[0].usage.data_keys_issued, 2u);
}

}  // namespace
}  // namespace keyward::kms
