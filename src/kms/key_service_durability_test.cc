// KeyService over real and faulty storage: every interrupted write leaves
// a consistent store, destroyed key material leaves the store's files, and
// a restart over SQLite and a SoftHSM token finds everything again.
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "hsm/pkcs11_root_of_trust.h"
#include "keystore/fault_injecting_key_store.h"
#include "keystore/sqlite_key_store.h"
#include "kms/key_service_fixture.h"
#include "testing/softhsm.h"
#include "testing/subprocess.h"

namespace keyward::kms {
namespace {

using keystore::Key;
using keystore::KekProtection;
using keystore::VersionState;

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

// After a version is destroyed, its sealed KEK is in none of the store's
// files: not in the database, not in the write-ahead log (where SQLite kept
// older copies of the page), not in the shared-memory index.  The live root
// key could unseal any copy left there.
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

// The real thing: SQLite on disk and a SoftHSM token.
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
