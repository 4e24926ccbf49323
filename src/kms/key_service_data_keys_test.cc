// KeyService: data keys — binding to key, version, environment and
// context, usage counting and limits, batches, small payloads, keys for
// signed messages.
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "crypto/signature.h"
#include "keyward/message.h"
#include "kms/key_service_fixture.h"
#include "kms/kms_keyring.h"

namespace keyward::kms {
namespace {

using keystore::Key;
using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;

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

// Two replicas over one store, before the rotation's notification reaches
// the second: a data key wrapped under the new version by the first still
// unwraps on the second, which reads the store again rather than calling
// the version unknown.
TEST(ReplicaCacheTest, AVersionNewerThanTheCacheIsReadFromTheStore) {
  auto store = std::make_shared<keystore::MemoryKeyStore>("dev");
  auto root = std::make_shared<hsm::testing::SoftwareRootOfTrust>();
  KeyServiceOptions o;
  o.environment = "dev";
  o.usage_flush_interval = absl::ZeroDuration();
  KW_ASSERT_OK_AND_ASSIGN(auto a, KeyService::Create(o, store, root));
  KW_ASSERT_OK_AND_ASSIGN(auto b, KeyService::Create(o, store, root));
  KW_ASSERT_OK(a->CreateKey({.name = "k"}).status());
  KW_ASSERT_OK_AND_ASSIGN(auto v1, b->GenerateDataKeys("k", {}, 1));  // b caches version 1
  KW_ASSERT_OK(a->RotateKey("k").status());
  KW_ASSERT_OK_AND_ASSIGN(auto v2, a->GenerateDataKeys("k", {}, 1));
  ASSERT_EQ(v2[0].key.key_version, 2u);
  KW_ASSERT_OK_AND_ASSIGN(SecretData back, b->DecryptDataKey(v2[0].wrapped, {}));
  EXPECT_EQ(back.AsStringView(), v2[0].plaintext.AsStringView());
  // And the version it cached still unwraps.
  KW_ASSERT_OK_AND_ASSIGN(SecretData first, b->DecryptDataKey(v1[0].wrapped, {}));
  EXPECT_EQ(first.AsStringView(), v1[0].plaintext.AsStringView());
}

}  // namespace
}  // namespace keyward::kms
