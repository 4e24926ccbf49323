#include "crypto/internal/keyed_hmac_sha256.h"

#include <string>

#include "crypto/hmac.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace keyward::crypto::internal {
namespace {

using ::keyward::testing::StatusIs;

TEST(KeyedHmacSha256Test, AgreesWithHmacSha256AcrossLengthsAndKeys) {
  for (size_t key_size : {16, 32, 64, 65, 100}) {
    KW_ASSERT_OK_AND_ASSIGN(SecretData key, GenerateKey(key_size));
    KW_ASSERT_OK_AND_ASSIGN(auto keyed, KeyedHmacSha256::New(key));
    KW_ASSERT_OK_AND_ASSIGN(auto reference, HmacSha256::New(key));
    for (size_t n : {0, 1, 55, 56, 63, 64, 65, 200}) {
      KW_ASSERT_OK_AND_ASSIGN(std::string msg, RandomBytes(n));
      KW_ASSERT_OK_AND_ASSIGN(std::string expected, reference->ComputeMac(msg));
      HmacSha256Tag tag = keyed->Mac(msg);
      EXPECT_EQ(std::string(tag.begin(), tag.end()), expected) << key_size << "/" << n;
      // Computations from the same keyed state do not disturb each other.
      EXPECT_EQ(keyed->Mac(msg), tag);
    }
  }
}

TEST(KeyedHmacSha256Test, VerifyTakesTagsOf16To32BytesOnly) {
  KW_ASSERT_OK_AND_ASSIGN(SecretData key, GenerateKey(32));
  KW_ASSERT_OK_AND_ASSIGN(auto mac, KeyedHmacSha256::New(key));
  HmacSha256Tag tag = mac->Mac("data");
  const std::string full(tag.begin(), tag.end());
  EXPECT_TRUE(mac->Verify(full, "data"));
  EXPECT_TRUE(mac->Verify(full.substr(0, 16), "data"));
  EXPECT_FALSE(mac->Verify(full.substr(0, 15), "data"));
  EXPECT_FALSE(mac->Verify("", "data"));
  EXPECT_FALSE(mac->Verify(full + "x", "data"));
  EXPECT_FALSE(mac->Verify(full, "datb"));
}

TEST(KeyedHmacSha256Test, ShortKeysAreRefused) {
  EXPECT_THAT(KeyedHmacSha256::New(SecretData(15)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace keyward::crypto::internal
