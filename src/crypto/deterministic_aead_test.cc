#include "crypto/deterministic_aead.h"

#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace keyward::crypto {
namespace {

using ::keyward::testing::StatusIs;

TEST(DeterministicAeadTest, EqualInputsGiveEqualCiphertexts) {
  KW_ASSERT_OK_AND_ASSIGN(SecretData key, GenerateKey(kAesSivKeySize));
  KW_ASSERT_OK_AND_ASSIGN(auto daead, DeterministicAead::New(key));
  KW_ASSERT_OK_AND_ASSIGN(std::string a,
                          daead->EncryptDeterministically("4111", "pan"));
  KW_ASSERT_OK_AND_ASSIGN(std::string b,
                          daead->EncryptDeterministically("4111", "pan"));
  KW_ASSERT_OK_AND_ASSIGN(std::string c,
                          daead->EncryptDeterministically("4112", "pan"));
  KW_ASSERT_OK_AND_ASSIGN(std::string d,
                          daead->EncryptDeterministically("4111", "iban"));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, d);
  KW_ASSERT_OK_AND_ASSIGN(SecretData pt, daead->DecryptDeterministically(a, "pan"));
  EXPECT_EQ(pt.AsStringView(), "4111");
}

TEST(DeterministicAeadTest, EmptyPlaintextIsRefusedWithAReason) {
  KW_ASSERT_OK_AND_ASSIGN(SecretData key, GenerateKey(kAesSivKeySize));
  KW_ASSERT_OK_AND_ASSIGN(auto daead, DeterministicAead::New(key));
  EXPECT_THAT(daead->EncryptDeterministically("", "x"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("empty plaintext")));
  EXPECT_THAT(daead->DecryptDeterministically(std::string(16, 'a'), "x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(DeterministicAeadTest, TamperingAndWrongSizesAreRejected) {
  KW_ASSERT_OK_AND_ASSIGN(SecretData key, GenerateKey(kAesSivKeySize));
  KW_ASSERT_OK_AND_ASSIGN(auto daead, DeterministicAead::New(key));
  KW_ASSERT_OK_AND_ASSIGN(std::string ct,
                          daead->EncryptDeterministically("field", ""));
  for (size_t i = 0; i < ct.size(); ++i) {
    std::string bad = ct;
    bad[i] ^= 0x80;
    EXPECT_THAT(daead->DecryptDeterministically(bad, ""),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
  EXPECT_FALSE(daead->DecryptDeterministically(ct.substr(0, 15), "").ok());
  EXPECT_THAT(DeterministicAead::New(SecretData(32)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace keyward::crypto
