#include "kms/data_key_blob.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keyward/errors.h"
#include "testing/status_matchers.h"

namespace keyward::kms {
namespace {

TEST(DataKeyBlobTest, RoundTripsAndRejectsGarbage) {
  DataKeyBlob blob{"dev", "payments/cards", 7, ContextDigest({{"t", "a"}}),
                   std::string(kSealedDataKeySize, 's')};
  const std::string bytes = EncodeBlob(blob);
  KW_ASSERT_OK_AND_ASSIGN(DataKeyBlob back, DecodeBlob(bytes));
  EXPECT_EQ(back.environment, "dev");
  EXPECT_EQ(back.key_name, "payments/cards");
  EXPECT_EQ(back.key_version, 7u);
  EXPECT_EQ(back.context_digest, blob.context_digest);
  EXPECT_EQ(back.sealed, blob.sealed);
  for (size_t len = 0; len < bytes.size(); ++len) {
    auto r = DecodeBlob(bytes.substr(0, len));
    ASSERT_FALSE(r.ok()) << len;
    EXPECT_EQ(GetErrorCode(r.status()), ErrorCode::kMalformedHeader);
  }
  EXPECT_FALSE(DecodeBlob(bytes + "x").ok());
  std::string v2 = bytes;
  v2[0] = 2;
  EXPECT_FALSE(DecodeBlob(v2).ok());
  EXPECT_NE(ContextDigest({{"t", "a"}}), ContextDigest({{"t", "b"}}));
  EXPECT_NE(DataKeyAad(blob, {{"t", "a"}}), DataKeyAad(blob, {{"t", "b"}}));
}

}  // namespace
}  // namespace keyward::kms
