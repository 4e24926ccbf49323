#include "crypto/hkdf.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "testing/wycheproof.h"

namespace keyward::crypto {
namespace {

using ::keyward::testing::HexDecode;
using ::keyward::testing::HexEncode;
using ::keyward::testing::StatusIs;

std::string Range(int from, int to) {
  std::string s;
  for (int i = from; i < to; ++i) s.push_back(static_cast<char>(i));
  return s;
}

// HKDF-SHA-512 has no Wycheproof file here.  These expected values were
// computed with an independent implementation (Python's hmac module, the
// RFC 5869 construction), which reproduces RFC 5869 test case 1 for SHA-256.
TEST(HkdfTest, Sha512KnownAnswers) {
  KW_ASSERT_OK_AND_ASSIGN(
      SecretData okm, Hkdf(HashFunction::kSha512, Range(0, 22), Range(0, 13),
                           Range(0xf0, 0xfa), 42));
  EXPECT_EQ(HexEncode(okm.AsStringView()),
            "8a642d880d39665d7d6957b7c15a53e681476094a9fc9d07e4c45e56f9a9ddf6"
            "a13fc9944c6e251bc1b1");
  KW_ASSERT_OK_AND_ASSIGN(
      SecretData okm2, Hkdf(HashFunction::kSha512, "keyward-ikm", "", "", 100));
  EXPECT_EQ(HexEncode(okm2.AsStringView()),
            "7903f61177036312c961e388be76bcdd54c405346137cc99f3ea2d8741a4b04b"
            "aa5cd38429509bda439792d7005dbb4dd6f60293835f4fb0bfed075d4311fde7"
            "8f1c15764a0728e19fc1c2e57c340ee7606f454b8a5a6008c542b4f6a36ec65e"
            "620a7833");
}

TEST(HkdfTest, Rfc5869Case1Sha256) {
  KW_ASSERT_OK_AND_ASSIGN(
      SecretData okm,
      Hkdf(HashFunction::kSha256, std::string(22, 0x0b),
           HexDecode("000102030405060708090a0b0c"),
           HexDecode("f0f1f2f3f4f5f6f7f8f9"), 42));
  EXPECT_EQ(HexEncode(okm.AsStringView()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
            "34007208d5b887185865");
}

TEST(HkdfTest, OutputSizeLimits) {
  EXPECT_TRUE(Hkdf(HashFunction::kSha256, "k", "", "", 255 * 32).ok());
  EXPECT_THAT(Hkdf(HashFunction::kSha256, "k", "", "", 255 * 32 + 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(Hkdf(HashFunction::kSha512, "k", "", "", 255 * 64).ok());
  EXPECT_THAT(Hkdf(HashFunction::kSha512, "k", "", "", 255 * 64 + 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Hkdf(HashFunction::kSha256, "k", "", "", 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(HkdfTest, InfoSeparatesOutputs) {
  KW_ASSERT_OK_AND_ASSIGN(SecretData a,
                          Hkdf(HashFunction::kSha256, "ikm", "s", "a", 32));
  KW_ASSERT_OK_AND_ASSIGN(SecretData b,
                          Hkdf(HashFunction::kSha256, "ikm", "s", "b", 32));
  EXPECT_FALSE(ConstantTimeEquals(a, b));
}

}  // namespace
}  // namespace keyward::crypto

namespace keyward::crypto {
namespace {

// RFC 5869 test case 1, starting from its PRK.
TEST(HkdfTest, ExpandOnlyMatchesRfc5869Case1) {
  KW_ASSERT_OK_AND_ASSIGN(
      SecretData okm,
      HkdfExpand(HashFunction::kSha256,
                 testing::HexDecode("077709362c2e32df0ddc3f0dc47bba63"
                                    "90b6c73bb50f9c3122ec844ad7c2b3e5"),
                 testing::HexDecode("f0f1f2f3f4f5f6f7f8f9"), 42));
  EXPECT_EQ(testing::HexEncode(okm.AsStringView()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
            "34007208d5b887185865");
  EXPECT_THAT(HkdfExpand(HashFunction::kSha256, std::string(31, 'k'), "", 32),
              testing::StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace keyward::crypto

namespace keyward::crypto {
namespace {

std::string ExpandWith(const HkdfSha256Expander& e, absl::string_view info, size_t size) {
  std::string out(size, '\0');
  EXPECT_THAT(e.Expand(info, {reinterpret_cast<uint8_t*>(out.data()), out.size()}),
              testing::IsOk());
  return out;
}

// RFC 5869 test cases 1 and 2 (SHA-256), from their PRKs.
TEST(HkdfSha256ExpanderTest, MatchesRfc5869) {
  KW_ASSERT_OK_AND_ASSIGN(auto case1, HkdfSha256Expander::New(testing::HexDecode(
                                          "077709362c2e32df0ddc3f0dc47bba63"
                                          "90b6c73bb50f9c3122ec844ad7c2b3e5")));
  EXPECT_EQ(testing::HexEncode(ExpandWith(*case1, testing::HexDecode("f0f1f2f3f4f5f6f7f8f9"), 42)),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
            "34007208d5b887185865");
  std::string info2;
  for (int b = 0xb0; b <= 0xff; ++b) info2.push_back(static_cast<char>(b));
  KW_ASSERT_OK_AND_ASSIGN(auto case2, HkdfSha256Expander::New(testing::HexDecode(
                                          "06a6b88c5853361a06104c9ceb35b45c"
                                          "ef760014904671014a193f40c15fc244")));
  EXPECT_EQ(testing::HexEncode(ExpandWith(*case2, info2, 82)),
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
            "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
            "cc30c58179ec3e87c14c01d5c1f3434f1d87");
}

// Against OpenSSL's HKDF (EVP_KDF) for infos and sizes on both sides of
// block boundaries, twice per expander (the reset to the keyed state).
TEST(HkdfSha256ExpanderTest, AgreesWithHkdfExpand) {
  const std::string prk = testing::HexDecode(
      "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021");
  KW_ASSERT_OK_AND_ASSIGN(auto e, HkdfSha256Expander::New(prk));
  for (size_t info_size : {0, 1, 31, 52, 55, 56, 63, 64, 65, 119, 120, 200}) {
    const std::string info(info_size, static_cast<char>('a' + info_size % 26));
    for (size_t size : {1, 32, 33, 64, 65, 100, 8160}) {
      KW_ASSERT_OK_AND_ASSIGN(SecretData want, HkdfExpand(HashFunction::kSha256, prk, info, size));
      for (int round = 0; round < 2; ++round) {
        EXPECT_EQ(ExpandWith(*e, info, size), want.AsStringView())
            << "info " << info_size << " size " << size;
      }
    }
  }
}

TEST(HkdfSha256ExpanderTest, Limits) {
  EXPECT_THAT(HkdfSha256Expander::New(std::string(31, 'k')).status(),
              testing::StatusIs(absl::StatusCode::kInvalidArgument));
  KW_ASSERT_OK_AND_ASSIGN(auto e, HkdfSha256Expander::New(std::string(32, 'k')));
  std::string too_big(8161, 'x');
  EXPECT_THAT(e->Expand("", {reinterpret_cast<uint8_t*>(too_big.data()), too_big.size()}),
              testing::StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(e->Expand("", {}), testing::StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace keyward::crypto
