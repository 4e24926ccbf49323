#include "crypto/hmac.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "testing/wycheproof.h"

namespace keyward::crypto {
namespace {

using ::keyward::testing::HexEncode;
using ::keyward::testing::StatusIs;

// RFC 4231 test case 2 uses a 4-byte key, below our minimum; case 3 (20 x
// 0xaa, 50 x 0xdd) is allowed.
TEST(HmacTest, Rfc4231Case3) {
  KW_ASSERT_OK_AND_ASSIGN(
      auto mac, HmacSha256::New(SecretData::CopyFrom(std::string(20, '\xaa'))));
  KW_ASSERT_OK_AND_ASSIGN(std::string tag,
                          mac->ComputeMac(std::string(50, '\xdd')));
  EXPECT_EQ(HexEncode(tag),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
  KW_EXPECT_OK(mac->VerifyMac(tag, std::string(50, '\xdd')));
}

TEST(HmacTest, TruncatedTagsAndRejections) {
  KW_ASSERT_OK_AND_ASSIGN(
      auto mac16, HmacSha256::New(SecretData::CopyFrom(std::string(32, 'k')), 16));
  KW_ASSERT_OK_AND_ASSIGN(std::string tag, mac16->ComputeMac("data"));
  EXPECT_EQ(tag.size(), 16u);
  KW_EXPECT_OK(mac16->VerifyMac(tag, "data"));
  EXPECT_THAT(mac16->VerifyMac(tag.substr(0, 15), "data"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(mac16->VerifyMac(tag, "datb"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  tag[3] ^= 4;
  EXPECT_THAT(mac16->VerifyMac(tag, "data"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(HmacTest, RejectsWeakParameters) {
  EXPECT_THAT(HmacSha256::New(SecretData(15)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(HmacSha256::New(SecretData(32), 15),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(HmacSha256::New(SecretData(32), 33),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace keyward::crypto
