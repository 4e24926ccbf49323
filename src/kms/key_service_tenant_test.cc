// KeyService: the tenant layer (blob version 2) and tenant erasure, tested
// from the side of whoever holds the wrapped keys (the application's
// database, a copy of it) and, where it matters, of an insider with the
// HSM and the key store.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "crypto/aead.h"
#include "crypto/hmac.h"
#include "format/header.h"
#include "keystore/fault_injecting_key_store.h"
#include "keyward/message.h"
#include "kms/batch_rewrap.h"
#include "kms/key_service_fixture.h"
#include "kms/kms_keyring.h"

namespace keyward::kms {
namespace {

using keystore::KekProtection;
using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kKey[] = "fields";
// Distinctive, so that a test can tell it never shows in a message.
constexpr char kAcme[] = "tenant-acme-5c1f9e";
constexpr char kGlobex[] = "tenant-globex-77ad02";

EncryptionContext FieldContext(const std::string& tenant) {
  EncryptionContext c{{"keyward:dataset", "orders"}, {"keyward:class", "pii"}};
  if (!tenant.empty()) c[kTenantContextKey] = tenant;
  return c;
}

class TenantTest : public KeyServiceTest {
 protected:
  void SetUp() override {
    KeyServiceTest::SetUp();
    MustCreate(kKey);
  }
  // What an insider with the HSM and the key store reads: the unsealed
  // tenant key, found the way keywardd finds it.
  SecretData TenantKeyMaterial(const std::string& tenant) {
    auto sealed_id_key = store_->GetSealedSecret("tenant-id-hmac-key");
    EXPECT_TRUE(sealed_id_key.ok() && sealed_id_key->has_value());
    auto id_key = root_->Unseal(**sealed_id_key, "keyward tenant id hmac v1|dev");
    EXPECT_TRUE(id_key.ok()) << id_key.status();
    auto hmac = crypto::HmacSha256::New(*id_key);
    auto id = (*hmac)->ComputeMac(tenant);
    auto record = store_->GetTenantKey(kKey, *id);
    EXPECT_TRUE(record.ok() && record->has_value());
    if (!record.ok() || !record->has_value() || (*record)->is_erased()) return SecretData();
    auto material = root_->Unseal((*record)->sealed, TenantKeyAad("dev", kKey, tenant));
    EXPECT_TRUE(material.ok()) << material.status();
    return material.ok() ? std::move(*material) : SecretData();
  }
  // The version's KEK as an insider with the HSM unseals it (wrapped-by-root
  // keys only).
  std::unique_ptr<crypto::Aead> Kek(uint32_t version) {
    auto key = store_->GetKey(kKey);
    auto kek = root_->Unseal(key->versions[version - 1].sealed_kek, KekAad("dev", kKey, version));
    EXPECT_TRUE(kek.ok()) << kek.status();
    return std::move(*crypto::NewAead(crypto::AeadAlgorithm::kAes256Gcm, *kek));
  }
};

TEST_P(TenantTest, TenantDataKeysRoundTripUnderATenantLayer) {
  const EncryptionContext ctx = FieldContext(kAcme);
  KW_ASSERT_OK_AND_ASSIGN(DataKey dk, svc_->GenerateDataKey(kKey, ctx));
  KW_ASSERT_OK_AND_ASSIGN(DataKeyBlob blob, DecodeBlob(dk.wrapped));
  EXPECT_EQ(blob.version, kTenantBlobVersion);
  EXPECT_EQ(blob.sealed.size(), 88u);
  EXPECT_EQ(dk.wrapped.size(), EncodeBlobHeader(blob).size() + 88);
  KW_ASSERT_OK_AND_ASSIGN(SecretData back, svc_->DecryptDataKey(dk.wrapped, ctx));
  EXPECT_TRUE(ConstantTimeEquals(back, dk.plaintext));

  // Without a tenant: version 1, as before.
  KW_ASSERT_OK_AND_ASSIGN(DataKey plain, svc_->GenerateDataKey(kKey, FieldContext("")));
  KW_ASSERT_OK_AND_ASSIGN(DataKeyBlob plain_blob, DecodeBlob(plain.wrapped));
  EXPECT_EQ(plain_blob.version, kBlobVersion);
  EXPECT_EQ(plain_blob.sealed.size(), 60u);

  // Every data key path: without plaintext, batches.
  KW_ASSERT_OK_AND_ASSIGN(WrappedKey no_pt, svc_->GenerateDataKeyWithoutPlaintext(kKey, ctx));
  EXPECT_EQ(DecodeBlob(no_pt.wrapped)->version, kTenantBlobVersion);
  KW_EXPECT_OK(svc_->DecryptDataKey(no_pt.wrapped, ctx).status());
  KW_ASSERT_OK_AND_ASSIGN(auto batch, svc_->GenerateDataKeys(kKey, ctx, 3));
  std::vector<DecryptRequest> requests;
  for (const DataKey& d : batch) requests.push_back({d.wrapped, ctx});
  requests.push_back({plain.wrapped, FieldContext("")});
  KW_ASSERT_OK_AND_ASSIGN(auto opened, svc_->DecryptDataKeys(requests));
  for (size_t i = 0; i < batch.size(); ++i) {
    ASSERT_TRUE(opened[i].ok()) << opened[i].status();
    EXPECT_TRUE(ConstantTimeEquals(*opened[i], batch[i].plaintext));
  }
  KW_EXPECT_OK(opened[3].status());

  // A tenant must be named.
  EncryptionContext unnamed = FieldContext("");
  unnamed[kTenantContextKey] = "";
  EXPECT_THAT(svc_->GenerateDataKey(kKey, unnamed),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cannot be empty")));
  EXPECT_THAT(svc_->DecryptDataKey(plain.wrapped, unnamed),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cannot be empty")));
}

TEST_P(TenantTest, EachTenantHasItsOwnKeyAndTheStoreNeverNamesTheTenant) {
  KW_ASSERT_OK_AND_ASSIGN(DataKey a, svc_->GenerateDataKey(kKey, FieldContext(kAcme)));
  KW_ASSERT_OK(svc_->GenerateDataKey(kKey, FieldContext(kGlobex)).status());
  const SecretData acme_key = TenantKeyMaterial(kAcme);
  const SecretData globex_key = TenantKeyMaterial(kGlobex);
  ASSERT_EQ(acme_key.size(), 32u);
  ASSERT_EQ(globex_key.size(), 32u);
  EXPECT_FALSE(ConstantTimeEquals(acme_key, globex_key));
  // Found by a keyed hash of the tenant, never by the tenant itself.
  KW_ASSERT_OK_AND_ASSIGN(auto by_name, store_->GetTenantKey(kKey, kAcme));
  EXPECT_FALSE(by_name.has_value());

  if (GetParam() != KekProtection::kWrappedByRoot) return;
  // The layers are as documented: the KEK opens the outer seal; only the
  // tenant's own key opens what is inside.
  KW_ASSERT_OK_AND_ASSIGN(DataKeyBlob blob, DecodeBlob(a.wrapped));
  const std::string serialized = format::SerializeContext(FieldContext(kAcme));
  KW_ASSERT_OK_AND_ASSIGN(SecretData inner,
                          Kek(1)->Decrypt(blob.sealed, DataKeyAadSerialized(blob, serialized)));
  EXPECT_EQ(inner.size(), 60u);
  const std::string inner_aad = TenantDataKeyAadSerialized(blob, serialized);
  auto with_acme = crypto::NewAead(crypto::AeadAlgorithm::kAes256Gcm, acme_key);
  KW_ASSERT_OK_AND_ASSIGN(SecretData dek, (*with_acme)->Decrypt(inner.AsStringView(), inner_aad));
  EXPECT_TRUE(ConstantTimeEquals(dek, a.plaintext));
  auto with_globex = crypto::NewAead(crypto::AeadAlgorithm::kAes256Gcm, globex_key);
  EXPECT_FALSE((*with_globex)->Decrypt(inner.AsStringView(), inner_aad).ok());
}

TEST_P(TenantTest, TheTenantCanNeitherBeSwappedNorDropped) {
  KW_ASSERT_OK_AND_ASSIGN(DataKey a, svc_->GenerateDataKey(kKey, FieldContext(kAcme)));
  KW_ASSERT_OK(svc_->GenerateDataKey(kKey, FieldContext(kGlobex)).status());
  KW_ASSERT_OK_AND_ASSIGN(DataKeyBlob blob, DecodeBlob(a.wrapped));

  // Another tenant's name in the context.
  EXPECT_THAT(svc_->DecryptDataKey(a.wrapped, FieldContext(kGlobex)),
              HasErrorCode(ErrorCode::kContextMismatch));
  // ... with the digest forged to match: the seal refuses it.
  DataKeyBlob swapped = blob;
  swapped.context_digest = ContextDigest(FieldContext(kGlobex));
  EXPECT_THAT(svc_->DecryptDataKey(EncodeBlob(swapped), FieldContext(kGlobex)),
              HasErrorCode(ErrorCode::kAuthenticationFailed));

  // The tenant dropped from the context, digest forged or not: refused as
  // a tenant's data key without its tenant, before anything is unwrapped.
  EXPECT_THAT(svc_->DecryptDataKey(a.wrapped, FieldContext("")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("made for a tenant")));
  DataKeyBlob dropped = blob;
  dropped.context_digest = ContextDigest(FieldContext(""));
  auto dropped_result = svc_->DecryptDataKey(EncodeBlob(dropped), FieldContext(""));
  EXPECT_THAT(dropped_result, HasErrorCode(ErrorCode::kContextMismatch));
  EXPECT_THAT(dropped_result, StatusIs(absl::StatusCode::kFailedPrecondition,
                                       HasSubstr("made for a tenant")));

  // A version-1 blob (no tenant layer) presented with a tenant: refused
  // before any unwrap — its seal here is garbage, so an unwrap would have
  // said authentication-failed.
  DataKeyBlob v1 = blob;
  v1.version = kBlobVersion;
  v1.sealed = std::string(kSealedDataKeySize, '\x5a');
  auto v1_result = svc_->DecryptDataKey(EncodeBlob(v1), FieldContext(kAcme));
  EXPECT_THAT(v1_result, HasErrorCode(ErrorCode::kContextMismatch));
  EXPECT_THAT(v1_result,
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not made for one")));
  // ... and a genuine one.
  KW_ASSERT_OK_AND_ASSIGN(DataKey plain, svc_->GenerateDataKey(kKey, FieldContext("")));
  EXPECT_THAT(svc_->DecryptDataKey(plain.wrapped, FieldContext(kAcme)),
              HasErrorCode(ErrorCode::kContextMismatch));
  // Relabelling a version-2 blob as version 1 does not even parse.
  std::string relabelled = a.wrapped;
  relabelled[0] = 1;
  EXPECT_THAT(svc_->DecryptDataKey(relabelled, FieldContext(kAcme)),
              HasErrorCode(ErrorCode::kMalformedHeader));
}

// A decrypt never makes a tenant key: an insider with the KEK forges a
// blob for a tenant that never had one; it passes the KEK's seal and stops
// at the missing tenant key.
TEST_P(TenantTest, DecryptNeverMakesATenantKey) {
  if (GetParam() != KekProtection::kWrappedByRoot) GTEST_SKIP() << "needs the KEK in hand";
  const EncryptionContext ghost = FieldContext("tenant-never-used");
  const std::string serialized = format::SerializeContext(ghost);
  DataKeyBlob forged{"dev", kKey, 1, ContextDigestSerialized(serialized), "", kTenantBlobVersion};
  KW_ASSERT_OK_AND_ASSIGN(forged.sealed,
                          Kek(1)->Encrypt(std::string(kSealedDataKeySize, '\x11'),
                                          DataKeyAadSerialized(forged, serialized)));
  EXPECT_THAT(svc_->DecryptDataKey(EncodeBlob(forged), ghost),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("has no key for the tenant")));
  KW_ASSERT_OK_AND_ASSIGN(TenantKeyStatus status,
                          svc_->GetTenantStatus(kKey, "tenant-never-used"));
  EXPECT_EQ(status.state, TenantKeyState::kNone);
}

TEST_P(TenantTest, RotationAndRewrapKeepTheTenantLayer) {
  const EncryptionContext ctx = FieldContext(kAcme);
  KW_ASSERT_OK_AND_ASSIGN(DataKey dk, svc_->GenerateDataKey(kKey, ctx));
  KW_ASSERT_OK_AND_ASSIGN(std::string message, svc_->Encrypt(kKey, "card 4111", ctx));
  KW_ASSERT_OK(svc_->RotateKey(kKey).status());

  KW_ASSERT_OK_AND_ASSIGN(WrappedKey rewrapped, svc_->ReWrapDataKey(dk.wrapped, ctx));
  EXPECT_EQ(rewrapped.key.key_version, 2u);
  KW_ASSERT_OK_AND_ASSIGN(DataKeyBlob blob, DecodeBlob(rewrapped.wrapped));
  EXPECT_EQ(blob.version, kTenantBlobVersion);
  EXPECT_EQ(blob.key_version, 2u);
  EXPECT_EQ(blob.sealed.size(), 88u);
  KW_ASSERT_OK_AND_ASSIGN(SecretData back, svc_->DecryptDataKey(rewrapped.wrapped, ctx));
  EXPECT_TRUE(ConstantTimeEquals(back, dk.plaintext));
  EXPECT_THAT(svc_->DecryptDataKey(rewrapped.wrapped, FieldContext("")),
              HasErrorCode(ErrorCode::kContextMismatch));

  // A message's header, rewrapped inside keywardd (the path of
  // RewrapMessageHeader and BatchRewrapMessageHeaders).
  auto results = RewrapHeaders(svc_.get(), {message}, {false}, {kKey});
  ASSERT_TRUE(results[0].ok()) << results[0].status();
  EXPECT_EQ(results[0]->key.key_version, 2u);
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(results[0]->header));
  ASSERT_EQ(info.data_keys.size(), 1u);
  KW_ASSERT_OK_AND_ASSIGN(DataKeyBlob entry, DecodeBlob(info.data_keys[0].ciphertext));
  EXPECT_EQ(entry.version, kTenantBlobVersion);
  EXPECT_EQ(entry.key_version, 2u);
  KW_ASSERT_OK_AND_ASSIGN(SecretData pt, svc_->Decrypt(kKey, results[0]->header, ctx));
  EXPECT_EQ(pt.AsStringView(), "card 4111");
}

TEST_P(TenantTest, ErasureShredsOneTenantForGoodAndLeavesTheOthers) {
  const EncryptionContext acme = FieldContext(kAcme);
  const EncryptionContext globex = FieldContext(kGlobex);
  KW_ASSERT_OK_AND_ASSIGN(DataKey a, svc_->GenerateDataKey(kKey, acme));
  KW_ASSERT_OK_AND_ASSIGN(DataKey b, svc_->GenerateDataKey(kKey, globex));
  KW_ASSERT_OK_AND_ASSIGN(std::string a_message, svc_->Encrypt(kKey, "acme's row", acme));
  KW_ASSERT_OK(svc_->DecryptDataKey(a.wrapped, acme).status());  // cached now
  KW_ASSERT_OK_AND_ASSIGN(TenantKeyStatus active, svc_->GetTenantStatus(kKey, kAcme));
  EXPECT_EQ(active.state, TenantKeyState::kActive);
  EXPECT_EQ(active.created, clock_.Now());

  clock_.Advance(absl::Hours(1));
  const absl::Time erased_at = clock_.Now();
  KW_ASSERT_OK_AND_ASSIGN(TenantErasure erasure,
                          svc_->EraseTenant(kKey, kAcme, "spiffe://keyward.dev/admin"));
  EXPECT_EQ(erasure.state_before, TenantKeyState::kActive);
  EXPECT_EQ(erasure.status.state, TenantKeyState::kErased);
  EXPECT_EQ(erasure.status.created, erased_at - absl::Hours(1));
  EXPECT_EQ(erasure.status.erased, erased_at);
  EXPECT_EQ(erasure.status.erased_by, "spiffe://keyward.dev/admin");

  auto check_erased = [&](absl::Status s) {
    EXPECT_THAT(s, HasErrorCode(ErrorCode::kTenantErased)) << s;
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kFailedPrecondition,
                            HasSubstr("spiffe://keyward.dev/admin")));
    EXPECT_THAT(s.message(), HasSubstr("key fields"));
    EXPECT_THAT(s.message(), HasSubstr("can no longer be decrypted"));
    // Error messages reach keywardd's log: never the tenant itself.
    EXPECT_THAT(s.message(), Not(HasSubstr(kAcme)));
  };
  for (int restarted = 0; restarted < 2; ++restarted) {
    SCOPED_TRACE(restarted ? "after a restart (nothing cached)" : "same process");
    // What was issued before cannot be opened, by any path.
    check_erased(svc_->DecryptDataKey(a.wrapped, acme).status());
    KW_ASSERT_OK_AND_ASSIGN(auto batch, svc_->DecryptDataKeys({{a.wrapped, acme}, {b.wrapped, globex}}));
    check_erased(batch[0].status());
    KW_ASSERT_OK_AND_ASSIGN(SecretData b_back, std::move(batch[1]));
    EXPECT_TRUE(ConstantTimeEquals(b_back, b.plaintext));
    check_erased(svc_->ReWrapDataKey(a.wrapped, acme).status());
    check_erased(svc_->Decrypt(kKey, a_message, acme).status());
    // Nothing new is made for the tenant.
    check_erased(svc_->GenerateDataKey(kKey, acme).status());
    check_erased(svc_->GenerateDataKeys(kKey, acme, 5).status());
    check_erased(svc_->WrapDataKey(kKey, SecretData(32), acme).status());
    check_erased(svc_->Encrypt(kKey, "new row", acme).status());
    // The other tenant is untouched.
    KW_ASSERT_OK_AND_ASSIGN(SecretData other, svc_->DecryptDataKey(b.wrapped, globex));
    EXPECT_TRUE(ConstantTimeEquals(other, b.plaintext));
    KW_EXPECT_OK(svc_->GenerateDataKey(kKey, globex).status());
    Restart();
  }
  // Idempotent: the first erasure stands.
  clock_.Advance(absl::Hours(1));
  KW_ASSERT_OK_AND_ASSIGN(TenantErasure again, svc_->EraseTenant(kKey, kAcme, "someone-else"));
  EXPECT_EQ(again.state_before, TenantKeyState::kErased);
  EXPECT_EQ(again.status.erased, erased_at);
  EXPECT_EQ(again.status.erased_by, "spiffe://keyward.dev/admin");
  KW_ASSERT_OK_AND_ASSIGN(TenantKeyStatus now, svc_->GetTenantStatus(kKey, kAcme));
  EXPECT_EQ(now.state, TenantKeyState::kErased);
  // The key store holds no trace of the tenant key's material.
  EXPECT_EQ(TenantKeyMaterial(kAcme).size(), 0u);
}

TEST_P(TenantTest, ATenantErasedBeforeItsFirstUseNeverGetsAKey) {
  KW_ASSERT_OK_AND_ASSIGN(TenantKeyStatus none, svc_->GetTenantStatus(kKey, kAcme));
  EXPECT_EQ(none.state, TenantKeyState::kNone);
  KW_ASSERT_OK_AND_ASSIGN(TenantErasure tomb, svc_->EraseTenant(kKey, kAcme, "admin"));
  EXPECT_EQ(tomb.state_before, TenantKeyState::kNone);
  EXPECT_FALSE(tomb.status.created.has_value());
  EXPECT_EQ(tomb.status.erased, clock_.Now());
  EXPECT_THAT(svc_->GenerateDataKey(kKey, FieldContext(kAcme)),
              HasErrorCode(ErrorCode::kTenantErased));
  // Only under that key.
  MustCreate("other");
  KW_EXPECT_OK(svc_->GenerateDataKey("other", FieldContext(kAcme)).status());
  // Bad requests change nothing.
  EXPECT_THAT(svc_->EraseTenant("missing", kAcme, "admin"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(svc_->EraseTenant(kKey, "", "admin"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(svc_->EraseTenant(kKey, std::string(4097, 't'), "admin"),
              HasErrorCode(ErrorCode::kLimitExceeded));
}

// An erasure interrupted the way a crash would: before its write commits
// nothing is erased (and a retry erases); after it commits, the caller
// hears of a failure but nothing opens any more, not even from the cache.
TEST_P(TenantTest, AnInterruptedErasureIsAllOrNothingAndRetriable) {
  for (auto mode : {keystore::FaultInjectingKeyStore::Mode::kBeforeCommit,
                    keystore::FaultInjectingKeyStore::Mode::kAfterCommit}) {
    const bool committed = mode == keystore::FaultInjectingKeyStore::Mode::kAfterCommit;
    SCOPED_TRACE(committed ? "after commit" : "before commit");
    auto faulty = std::make_shared<keystore::FaultInjectingKeyStore>(
        std::make_shared<keystore::MemoryKeyStore>("dev"));
    KW_ASSERT_OK_AND_ASSIGN(auto svc, KeyService::Create(options_, faulty, shared_root_));
    KW_ASSERT_OK(svc->CreateKey({.name = kKey}).status());
    const EncryptionContext acme = FieldContext(kAcme);
    KW_ASSERT_OK_AND_ASSIGN(DataKey a, svc->GenerateDataKey(kKey, acme));
    KW_ASSERT_OK(svc->DecryptDataKey(a.wrapped, acme).status());  // cached
    faulty->FailWrite(1, mode);
    EXPECT_THAT(svc->EraseTenant(kKey, kAcme, "admin"),
                StatusIs(absl::StatusCode::kUnavailable));
    faulty->Disarm();
    if (committed) {
      EXPECT_THAT(svc->DecryptDataKey(a.wrapped, acme), HasErrorCode(ErrorCode::kTenantErased));
    } else {
      KW_EXPECT_OK(svc->DecryptDataKey(a.wrapped, acme).status());
    }
    KW_ASSERT_OK_AND_ASSIGN(TenantErasure retry, svc->EraseTenant(kKey, kAcme, "admin"));
    EXPECT_EQ(retry.state_before,
              committed ? TenantKeyState::kErased : TenantKeyState::kActive);
    EXPECT_THAT(svc->DecryptDataKey(a.wrapped, acme), HasErrorCode(ErrorCode::kTenantErased));
  }
}

// Readers racing an erasure: once EraseTenant has returned, no decrypt
// that starts afterwards succeeds (a reader that read the store before the
// erasure must not put the key back into the cache after it).
TEST_P(TenantTest, NoDecryptSucceedsAfterTheErasureReturns) {
  const EncryptionContext acme = FieldContext(kAcme);
  KW_ASSERT_OK_AND_ASSIGN(DataKey a, svc_->GenerateDataKey(kKey, acme));
  std::atomic<bool> erased{false}, stop{false};
  std::atomic<int> late_successes{0}, attempts{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        const bool after = erased.load();
        auto r = svc_->DecryptDataKey(a.wrapped, acme);
        ++attempts;
        if (after && r.ok()) ++late_successes;
      }
    });
  }
  while (attempts.load() < 200) std::this_thread::yield();
  KW_ASSERT_OK(svc_->EraseTenant(kKey, kAcme, "admin").status());
  erased.store(true);
  const int at_erase = attempts.load();
  while (attempts.load() < at_erase + 400) std::this_thread::yield();
  stop.store(true);
  for (auto& t : readers) t.join();
  EXPECT_EQ(late_successes.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Protections, TenantTest,
                         ::testing::Values(KekProtection::kWrappedByRoot,
                                           KekProtection::kHsmResident));

}  // namespace
}  // namespace keyward::kms
