#include "crypto/key_wrap.h"

#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace keyward::crypto {
namespace {

using ::keyward::testing::StatusIs;

TEST(KeyWrapTest, WrapsAndUnwrapsKeysOfEverySizeUpTo64Bytes) {
  KW_ASSERT_OK_AND_ASSIGN(SecretData kek, GenerateKey(kKeyWrapKekSize));
  KW_ASSERT_OK_AND_ASSIGN(auto wrap, KeyWrap::New(kek));
  for (size_t size = 1; size <= 64; ++size) {
    KW_ASSERT_OK_AND_ASSIGN(SecretData key, GenerateKey(size));
    KW_ASSERT_OK_AND_ASSIGN(std::string wrapped, wrap->Wrap(key));
    EXPECT_EQ(wrapped.size(), (size + 7) / 8 * 8 + 8);
    KW_ASSERT_OK_AND_ASSIGN(SecretData back, wrap->Unwrap(wrapped));
    EXPECT_TRUE(ConstantTimeEquals(back, key)) << size;
  }
}

TEST(KeyWrapTest, WrongKekAndTamperingAreRejected) {
  KW_ASSERT_OK_AND_ASSIGN(SecretData kek, GenerateKey(kKeyWrapKekSize));
  KW_ASSERT_OK_AND_ASSIGN(SecretData other, GenerateKey(kKeyWrapKekSize));
  KW_ASSERT_OK_AND_ASSIGN(auto wrap, KeyWrap::New(kek));
  KW_ASSERT_OK_AND_ASSIGN(auto wrap_other, KeyWrap::New(other));
  KW_ASSERT_OK_AND_ASSIGN(SecretData dek, GenerateKey(32));
  KW_ASSERT_OK_AND_ASSIGN(std::string wrapped, wrap->Wrap(dek));
  EXPECT_THAT(wrap_other->Unwrap(wrapped),
              StatusIs(absl::StatusCode::kInvalidArgument));
  for (size_t i = 0; i < wrapped.size(); ++i) {
    std::string bad = wrapped;
    bad[i] ^= 0x10;
    EXPECT_THAT(wrap->Unwrap(bad), StatusIs(absl::StatusCode::kInvalidArgument))
        << i;
  }
  EXPECT_FALSE(wrap->Unwrap(wrapped.substr(0, 8)).ok());
  EXPECT_FALSE(wrap->Unwrap(wrapped + "12345678").ok());
  EXPECT_FALSE(wrap->Wrap(SecretData()).ok());
  EXPECT_FALSE(KeyWrap::New(SecretData(16)).ok());
}

}  // namespace
}  // namespace keyward::crypto
