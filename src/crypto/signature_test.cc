#include "crypto/signature.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace keyward::crypto {
namespace {

using ::keyward::testing::StatusIs;

std::string Sign(EcdsaP384Signer& s, absl::string_view data) {
  EXPECT_TRUE(s.Update(data).ok());
  auto sig = s.Finish();
  EXPECT_TRUE(sig.ok()) << sig.status();
  return sig.ok() ? *sig : "";
}

bool Verifies(absl::string_view point, absl::string_view data, absl::string_view sig) {
  auto v = EcdsaP384Verifier::FromPoint(point);
  if (!v.ok()) return false;
  if (!(*v)->Update(data).ok()) return false;
  return (*v)->Verify(sig);
}

// The private scalar 1 has the curve's generator as its public key
// (SEC 2, section 2.5.1): x = aa87ca22...0ab7, y odd, so prefix 0x03.
TEST(EcdsaP384Test, PublicKeysAreCompressedPoints) {
  std::string one(48, '\0');
  one[47] = 1;
  KW_ASSERT_OK_AND_ASSIGN(auto s, EcdsaP384Signer::FromPrivateScalarForTesting(one));
  EXPECT_EQ(absl::BytesToHexString(s->public_key()),
            "03aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c"
            "3a545e3872760ab7");
  KW_ASSERT_OK_AND_ASSIGN(auto fresh, EcdsaP384Signer::Generate());
  EXPECT_EQ(fresh->public_key().size(), kEcdsaP384CompressedPointSize);
  EXPECT_TRUE(fresh->public_key()[0] == 0x02 || fresh->public_key()[0] == 0x03);
}

TEST(EcdsaP384Test, SignaturesVerifyOnlyForTheirDataAndKey) {
  KW_ASSERT_OK_AND_ASSIGN(auto a, EcdsaP384Signer::Generate());
  KW_ASSERT_OK_AND_ASSIGN(auto b, EcdsaP384Signer::Generate());
  const std::string pa = a->public_key(), pb = b->public_key();
  const std::string sig = Sign(*a, "the message");
  EXPECT_LE(sig.size(), kMaxEcdsaP384SignatureSize);
  EXPECT_TRUE(Verifies(pa, "the message", sig));
  EXPECT_FALSE(Verifies(pa, "the messagE", sig));
  EXPECT_FALSE(Verifies(pb, "the message", sig));
  for (size_t i = 0; i < sig.size(); ++i) {
    std::string bad = sig;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_FALSE(Verifies(pa, "the message", bad)) << i;
  }
  EXPECT_FALSE(Verifies(pa, "the message", ""));
  // Streaming: pieces sign what their concatenation signs.
  KW_ASSERT_OK_AND_ASSIGN(auto c, EcdsaP384Signer::Generate());
  KW_ASSERT_OK(c->Update("the "));
  KW_ASSERT_OK(c->Update("message"));
  KW_ASSERT_OK_AND_ASSIGN(std::string pieces, c->Finish());
  EXPECT_TRUE(Verifies(c->public_key(), "the message", pieces));
  EXPECT_FALSE(c->Finish().ok()) << "a signer signs one stream";
}

TEST(EcdsaP384Test, PointsOffTheCurveAreRefused) {
  KW_ASSERT_OK_AND_ASSIGN(auto a, EcdsaP384Signer::Generate());
  std::string p = a->public_key();
  p[0] = 0x04;  // wrong prefix for 49 bytes
  EXPECT_THAT(EcdsaP384Verifier::FromPoint(p), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(EcdsaP384Verifier::FromPoint(""), StatusIs(absl::StatusCode::kInvalidArgument));
  std::string off(49, '\xff');
  off[0] = 0x02;  // x above the field prime: no point
  EXPECT_THAT(EcdsaP384Verifier::FromPoint(off), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(EcdsaP384Signer::FromPrivateScalarForTesting(std::string(48, '\0')),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace keyward::crypto
