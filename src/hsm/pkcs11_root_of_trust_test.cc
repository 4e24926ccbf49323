// Against a real SoftHSMv2 token created for the test in a temporary
// directory.
#include "hsm/pkcs11_root_of_trust.h"

#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <thread>
#include <vector>

#include "crypto/random.h"
#include "crypto/signature.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/softhsm.h"
#include "testing/status_matchers.h"

namespace keyward::hsm {
namespace {

using ::keyward::testing::SoftHsmToken;
using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;

class Pkcs11Test : public ::testing::Test {
 protected:
  void SetUp() override {
    auto token = SoftHsmToken::Create("keyward-test");
    ASSERT_TRUE(token.ok()) << token.status();
    token_.reset(*token);
  }
  Pkcs11Options Options() const {
    Pkcs11Options o;
    o.module_path = ::keyward::testing::kSoftHsmModule;
    o.token_label = token_->label();
    o.pin_file = token_->pin_file();
    o.root_key_label = "keyward-root/dev";
    return o;
  }
  std::unique_ptr<SoftHsmToken> token_;
};

TEST_F(Pkcs11Test, RootKeyIsCreatedOnceAndSealsAcrossRestarts) {
  std::string sealed;
  SecretData kek = *crypto::GenerateKey(32);
  {
    KW_ASSERT_OK_AND_ASSIGN(auto rot, OpenPkcs11(Options()));
    HsmInfo info = rot->Info();
    EXPECT_TRUE(info.software) << info.manufacturer;
    EXPECT_EQ(info.token_label, "keyward-test");
    KW_ASSERT_OK_AND_ASSIGN(sealed, rot->Seal(kek, "dev|k|1"));
    EXPECT_EQ(sealed.size(), 12u + 32u + 16u);
    KW_EXPECT_OK(rot->CheckHealth());
  }
  // A second open finds the same root key (creating another would fail to
  // unseal this).
  Pkcs11Options no_create = Options();
  no_create.create_root_key = false;
  KW_ASSERT_OK_AND_ASSIGN(auto rot, OpenPkcs11(no_create));
  KW_ASSERT_OK_AND_ASSIGN(SecretData back, rot->Unseal(sealed, "dev|k|1"));
  EXPECT_TRUE(ConstantTimeEquals(back, kek));
  // Bound to its associated data, and tamper-evident.
  EXPECT_THAT(rot->Unseal(sealed, "dev|k|2"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  std::string bad = sealed;
  bad[20] ^= 1;
  EXPECT_THAT(rot->Unseal(bad, "dev|k|1"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Random bytes come from the token.
  KW_ASSERT_OK_AND_ASSIGN(SecretData r1, rot->GenerateRandom(32));
  KW_ASSERT_OK_AND_ASSIGN(SecretData r2, rot->GenerateRandom(32));
  EXPECT_FALSE(ConstantTimeEquals(r1, r2));
}

TEST_F(Pkcs11Test, AnotherRootLabelCannotUnseal) {
  KW_ASSERT_OK_AND_ASSIGN(auto dev, OpenPkcs11(Options()));
  Pkcs11Options prod = Options();
  prod.root_key_label = "keyward-root/production";
  KW_ASSERT_OK_AND_ASSIGN(auto production, OpenPkcs11(prod));
  SecretData kek = *crypto::GenerateKey(32);
  KW_ASSERT_OK_AND_ASSIGN(std::string sealed, dev->Seal(kek, "x"));
  EXPECT_THAT(production->Unseal(sealed, "x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(Pkcs11Test, ResidentKeysLiveAndDieInTheToken) {
  KW_ASSERT_OK_AND_ASSIGN(auto rot, OpenPkcs11(Options()));
  KW_ASSERT_OK_AND_ASSIGN(std::string id, rot->CreateResidentKey("keyward-kek/dev/k/v1"));
  SecretData dek = *crypto::GenerateKey(32);
  KW_ASSERT_OK_AND_ASSIGN(std::string sealed, rot->ResidentSeal(id, dek, "aad"));
  // Found again by id after a restart.
  rot.reset();
  KW_ASSERT_OK_AND_ASSIGN(rot, OpenPkcs11(Options()));
  KW_ASSERT_OK_AND_ASSIGN(SecretData back, rot->ResidentUnseal(id, sealed, "aad"));
  EXPECT_TRUE(ConstantTimeEquals(back, dek));
  EXPECT_FALSE(rot->Unseal(sealed, "aad").ok()) << "root key is not the KEK";
  KW_ASSERT_OK(rot->DestroyResidentKey(id));
  KW_EXPECT_OK(rot->DestroyResidentKey(id));  // idempotent
  EXPECT_FALSE(rot->ResidentUnseal(id, sealed, "aad").ok());
}

TEST_F(Pkcs11Test, SigningKeyStaysInTheTokenAndSignaturesVerify) {
  std::string pem;
  {
    KW_ASSERT_OK_AND_ASSIGN(auto rot, OpenPkcs11(Options()));
    KW_ASSERT_OK_AND_ASSIGN(pem, rot->GetOrCreateSigningKey("keyward-audit/dev"));
    EXPECT_THAT(pem, HasSubstr("BEGIN PUBLIC KEY"));
  }
  KW_ASSERT_OK_AND_ASSIGN(auto rot, OpenPkcs11(Options()));
  KW_ASSERT_OK_AND_ASSIGN(std::string again, rot->GetOrCreateSigningKey("keyward-audit/dev"));
  EXPECT_EQ(again, pem) << "the same key is found after a restart";
  KW_ASSERT_OK_AND_ASSIGN(std::string sig, rot->Sign("keyward-audit/dev", "checkpoint 42"));
  KW_EXPECT_OK(crypto::VerifyEcdsaP256(pem, "checkpoint 42", sig));
  EXPECT_THAT(crypto::VerifyEcdsaP256(pem, "checkpoint 43", sig),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(rot->Sign("no-such-key", "x"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(Pkcs11Test, ClearErrorsForBadSettings) {
  Pkcs11Options o = Options();
  o.token_label = "no-such-token";
  EXPECT_THAT(OpenPkcs11(o), StatusIs(absl::StatusCode::kNotFound,
                                      HasSubstr("'keyward-test'")));
  o = Options();
  o.module_path = "/nonexistent/libpkcs11.so";
  EXPECT_THAT(OpenPkcs11(o), StatusIs(absl::StatusCode::kNotFound,
                                      HasSubstr("cannot load")));
  o = Options();
  const std::string wrong = token_->dir() + "/wrong-pin";
  std::ofstream(wrong) << "not-the-pin\n";
  ::chmod(wrong.c_str(), 0600);
  o.pin_file = wrong;
  EXPECT_THAT(OpenPkcs11(o), StatusIs(absl::StatusCode::kPermissionDenied));
  ::chmod(wrong.c_str(), 0644);
  EXPECT_THAT(OpenPkcs11(o), StatusIs(absl::StatusCode::kPermissionDenied,
                                      HasSubstr("chmod 600")));
  o = Options();
  o.create_root_key = false;
  o.root_key_label = "absent";
  EXPECT_THAT(OpenPkcs11(o), StatusIs(absl::StatusCode::kNotFound));
  o = Options();
  o.pin_env = "KEYWARD_TEST_PIN";  // both set
  EXPECT_THAT(OpenPkcs11(o), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(Pkcs11Test, PinFromEnvironment) {
  Pkcs11Options o = Options();
  o.pin_file.clear();
  o.pin_env = "KEYWARD_TEST_HSM_PIN";
  ::unsetenv("KEYWARD_TEST_HSM_PIN");
  EXPECT_THAT(OpenPkcs11(o), StatusIs(absl::StatusCode::kNotFound,
                                      HasSubstr("KEYWARD_TEST_HSM_PIN")));
  ::setenv("KEYWARD_TEST_HSM_PIN", "keyward-test-pin", 1);
  KW_EXPECT_OK(OpenPkcs11(o).status());
  ::unsetenv("KEYWARD_TEST_HSM_PIN");
}

// SoftHSMv2 2.6 crashes under concurrent calls into one token; the root of
// trust serializes them, so hammering it from many threads must just work.
TEST_F(Pkcs11Test, ConcurrentCallersAreSerialized) {
  KW_ASSERT_OK_AND_ASSIGN(auto rot, OpenPkcs11(Options()));
  KW_ASSERT_OK_AND_ASSIGN(std::string id, rot->CreateResidentKey("keyward-kek/dev/c/v1"));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        SecretData k = *crypto::GenerateKey(32);
        auto s1 = rot->Seal(k, "a");
        auto s2 = rot->ResidentSeal(id, k, "b");
        if (!s1.ok() || !s2.ok()) {
          ++failures;
          continue;
        }
        auto b1 = rot->Unseal(*s1, "a");
        auto b2 = rot->ResidentUnseal(id, *s2, "b");
        if (!b1.ok() || !b2.ok() || !ConstantTimeEquals(*b1, k) ||
            !ConstantTimeEquals(*b2, k)) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace keyward::hsm
