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
  // A version-1 blob relabelled as version 2 is short of the larger seal.
  std::string relabelled = bytes;
  relabelled[0] = 2;
  EXPECT_FALSE(DecodeBlob(relabelled).ok());
  std::string v3 = bytes;
  v3[0] = 3;
  EXPECT_THAT(DecodeBlob(v3), ::keyward::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                                           ::testing::HasSubstr("version")));
  EXPECT_NE(ContextDigest({{"t", "a"}}), ContextDigest({{"t", "b"}}));
  EXPECT_NE(DataKeyAad(blob, {{"t", "a"}}), DataKeyAad(blob, {{"t", "b"}}));
}

TEST(DataKeyBlobTest, TenantBlobsCarryTheLargerSealAndTheirVersionInTheAad) {
  DataKeyBlob blob{"dev", "k", 3, ContextDigest({{kTenantContextKey, "acme"}}),
                   std::string(kTenantSealedDataKeySize, 's'), kTenantBlobVersion};
  EXPECT_EQ(kTenantSealedDataKeySize, 88u);
  const std::string bytes = EncodeBlob(blob);
  EXPECT_EQ(bytes[0], 2);
  KW_ASSERT_OK_AND_ASSIGN(DataKeyBlob back, DecodeBlob(bytes));
  EXPECT_EQ(back.version, kTenantBlobVersion);
  EXPECT_EQ(back.sealed, blob.sealed);
  EXPECT_FALSE(DecodeBlob(bytes.substr(0, bytes.size() - 28)).ok());  // a v1-sized seal
  // The version byte is part of what both seals authenticate.
  DataKeyBlob v1 = blob;
  v1.version = kBlobVersion;
  const EncryptionContext ctx{{kTenantContextKey, "acme"}};
  EXPECT_NE(DataKeyAad(v1, ctx), DataKeyAad(blob, ctx));
  const std::string serialized("\0\0", 2);  // the empty context
  EXPECT_NE(TenantDataKeyAadSerialized(blob, serialized), DataKeyAadSerialized(blob, serialized));
  EXPECT_EQ(TenantKeyAad("dev", "k", "acme"), "keyward tenant key v1|dev|k|acme");
}

}  // namespace
}  // namespace keyward::kms
