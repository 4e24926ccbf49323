#include "fields/index_value.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace keyward::fields {
namespace {

using ::keyward::testing::StatusIs;
using Kind = IndexTransform::Kind;

const IndexTransform kTrim{Kind::kTrim};
const IndexTransform kLower{Kind::kLowercase};
const IndexTransform kDigits{Kind::kDigits};
const IndexTransform kNfkc{Kind::kNfkc};
IndexTransform Last(int n) { return {Kind::kLast, n}; }
IndexTransform First(int n) { return {Kind::kFirst, n}; }

const std::string kKey(32, '\x5a');

std::string Apply(const std::vector<IndexTransform>& chain, std::string text) {
  auto out = ApplyTransforms(chain, std::move(text));
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : "<error>";
}

// The value computed independently: OpenSSL's one-shot HMAC() over the
// length-prefixed parts, first 8 bytes big-endian, shifted.
uint64_t ReferenceValue(const std::vector<std::string>& parts, int bits) {
  std::string input;
  for (const std::string& p : parts) {
    const uint32_t n = static_cast<uint32_t>(p.size());
    input += static_cast<char>(n >> 24);
    input += static_cast<char>(n >> 16);
    input += static_cast<char>(n >> 8);
    input += static_cast<char>(n);
    input += p;
  }
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kKey.data(), static_cast<int>(kKey.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | mac[i];
  return v >> (64 - bits);
}

std::unique_ptr<IndexHasher> Hasher(int bits) {
  auto h = IndexHasher::New(SecretData::CopyFrom(kKey), bits);
  EXPECT_TRUE(h.ok()) << h.status();
  return h.ok() ? *std::move(h) : nullptr;
}

TEST(IndexValueTest, TrimAndLowercaseMakeEmailsEqual) {
  EXPECT_EQ(Apply({kTrim, kLower}, "  ALICE@Example.COM "), "alice@example.com");
  auto hasher = Hasher(16);
  ASSERT_NE(hasher, nullptr);
  const std::string a = Apply({kTrim, kLower}, "  ALICE@Example.COM ");
  const std::string b = Apply({kTrim, kLower}, "alice@example.com");
  EXPECT_EQ(hasher->Value({a}), hasher->Value({b}));
  EXPECT_NE(hasher->Value({"alice@example.com"}), hasher->Value({"ALICE@example.com"}));
}

TEST(IndexValueTest, TrimStripsUnicodeWhiteSpaceAtTheEndsOnly) {
  EXPECT_EQ(Apply({kTrim}, " \t\r\n\xC2\xA0" "a b\xC2\xA0" "c\xE3\x80\x80\n"), "a b\xC2\xA0" "c");
  EXPECT_EQ(Apply({kTrim}, "   "), "");
  EXPECT_EQ(Apply({kTrim}, "x"), "x");
  // Bytes that are not UTF-8 stop trimming rather than fail it.
  EXPECT_EQ(Apply({kTrim}, " \xFF "), "\xFF");
}

TEST(IndexValueTest, DigitsThenLastFourOfACardNumber) {
  EXPECT_EQ(Apply({kDigits, Last(4)}, "4111-1111-1111-1234"), "1234");
  EXPECT_EQ(Apply({kDigits}, "+1 (555) 010-9999 ext. ٣"), "15550109999");
}

TEST(IndexValueTest, NfkcFoldsCompatibilityCharacters) {
  EXPECT_EQ(Apply({kNfkc}, "\xEF\xAC\x81"), "fi");                 // U+FB01
  EXPECT_EQ(Apply({kNfkc}, "\xEF\xBC\xA1\xEF\xBC\x91"), "A1");     // fullwidth A, 1
  EXPECT_EQ(Apply({kNfkc}, "e\xCC\x81"), "\xC3\xA9");              // e + U+0301 -> é
  EXPECT_EQ(Apply({kNfkc}, ""), "");
  // Embedded NULs are text like any other.
  EXPECT_EQ(Apply({kNfkc}, std::string("a\0b", 3)), std::string("a\0b", 3));
  // A long expansion (U+FDFA becomes 18 code points) grows the buffer.
  std::string many;
  for (int i = 0; i < 50; ++i) many += "\xEF\xB7\xBA";
  EXPECT_EQ(Apply({kNfkc}, many).size(), 50u * 33u);
}

TEST(IndexValueTest, LowercaseIsUnicodeCodePointByCodePoint) {
  EXPECT_EQ(Apply({kLower}, "\xC3\x84\xC3\x96"), "\xC3\xA4\xC3\xB6");  // ÄÖ -> äö
  EXPECT_EQ(Apply({kLower}, "\xCE\xA3\xCE\x9F\xCE\xA6"), "\xCF\x83\xCE\xBF\xCF\x86");  // ΣΟΦ
  // U+023A (2 bytes) lowercases to U+2C65 (3 bytes).
  EXPECT_EQ(Apply({kLower}, "\xC8\xBA"), "\xE2\xB1\xA5");
}

TEST(IndexValueTest, FirstAndLastCountCodePointsNotBytes) {
  const std::string s = "\xC3\xA4\xC3\xB6\xC3\xBC\xC3\x9F";  // äöüß
  EXPECT_EQ(Apply({First(2)}, s), "\xC3\xA4\xC3\xB6");
  EXPECT_EQ(Apply({Last(2)}, s), "\xC3\xBC\xC3\x9F");
  EXPECT_EQ(Apply({Last(1)}, "ab\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");  // an emoji
  EXPECT_EQ(Apply({First(10)}, s), s);
  EXPECT_EQ(Apply({Last(10)}, s), s);
  EXPECT_EQ(Apply({Last(3)}, ""), "");
}

TEST(IndexValueTest, InvalidUtf8IsRefusedByCharacterSteps) {
  for (const std::string& bad : {std::string("ab\xFF"), std::string("\xC3"),
                                std::string("\xED\xA0\x80"),  // a surrogate
                                std::string("\xC0\xAF")}) {   // overlong '/'
    for (const IndexTransform& t : {kLower, kNfkc, First(1), Last(1)}) {
      EXPECT_THAT(ApplyTransforms({t}, bad), StatusIs(absl::StatusCode::kInvalidArgument))
          << IndexTransformName(t);
    }
  }
  // Steps that read bytes only accept it.
  EXPECT_EQ(Apply({kDigits}, "1\xFF" "2"), "12");
}

TEST(IndexValueTest, ValueIsTheTruncatedHmacOfLengthPrefixedParts) {
  for (int bits : {1, 2, 16, 31, 32}) {
    auto hasher = Hasher(bits);
    ASSERT_NE(hasher, nullptr);
    EXPECT_EQ(hasher->bits(), bits);
    for (const std::vector<std::string>& parts :
         std::vector<std::vector<std::string>>{{"alice@example.com"}, {""}, {"ab", "c"},
                                               {std::string(100, 'x'), "y", ""}}) {
      std::vector<absl::string_view> views(parts.begin(), parts.end());
      const uint64_t v = hasher->Value(views);
      EXPECT_EQ(v, ReferenceValue(parts, bits)) << bits;
      EXPECT_LT(v, uint64_t{1} << bits);
    }
  }
}

TEST(IndexValueTest, BitsBoundaries) {
  // 1 bit: both values occur over a few inputs; 32 bits: the top bit can be set.
  auto one = Hasher(1);
  auto wide = Hasher(32);
  ASSERT_NE(one, nullptr);
  ASSERT_NE(wide, nullptr);
  bool saw0 = false, saw1 = false, saw_top = false;
  for (int i = 0; i < 64; ++i) {
    const std::string s = std::to_string(i);
    const uint64_t v = one->Value({s});
    ASSERT_LE(v, 1u);
    (v == 0 ? saw0 : saw1) = true;
    const uint64_t w = wide->Value({s});
    ASSERT_LE(w, std::numeric_limits<uint32_t>::max());
    saw_top |= (w >> 31) == 1;
  }
  EXPECT_TRUE(saw0 && saw1);
  EXPECT_TRUE(saw_top);
  SecretData key = SecretData::CopyFrom(kKey);
  EXPECT_THAT(IndexHasher::New(key, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(IndexHasher::New(key, 33), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(IndexHasher::New(SecretData::CopyFrom(std::string(16, 'k')), 8),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(IndexValueTest, CompoundPartsAreLengthPrefixed) {
  auto hasher = Hasher(32);
  ASSERT_NE(hasher, nullptr);
  EXPECT_NE(hasher->Value({"ab", "c"}), hasher->Value({"a", "bc"}));
  EXPECT_NE(hasher->Value({"abc"}), hasher->Value({"ab", "c"}));
  EXPECT_NE(hasher->Value({"", "x"}), hasher->Value({"x", ""}));
}

TEST(IndexValueTest, IndexTextOfEachType) {
  EXPECT_EQ(*IndexText(FieldValue(int64_t{-42})), "-42");
  EXPECT_EQ(*IndexText(FieldValue(std::numeric_limits<int64_t>::min())),
            "-9223372036854775808");
  EXPECT_EQ(*IndexText(FieldValue(std::string("Text"))), "Text");
  EXPECT_EQ(*IndexText(FieldValue(FieldBytes{std::string("\0\xFF", 2)})),
            std::string("\0\xFF", 2));
  EXPECT_EQ(*IndexText(FieldValue(FieldJson{"{\"a\": 1}"})), "{\"a\": 1}");
  EXPECT_THAT(IndexText(FieldValue()), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(IndexValueTest, RealsUseTheShortestTextThatRoundTrips) {
  EXPECT_EQ(*IndexText(FieldValue(0.1)), "0.1");
  EXPECT_EQ(*IndexText(FieldValue(1.5)), "1.5");
  EXPECT_EQ(*IndexText(FieldValue(1e300)), "1e+300");
  for (double d : {0.1, 1.0 / 3.0, 2.5e-308, 123456789.125, -7.0e22}) {
    KW_ASSERT_OK_AND_ASSIGN(std::string text, IndexText(FieldValue(d)));
    EXPECT_EQ(std::stod(text), d) << text;
  }
}

}  // namespace
}  // namespace keyward::fields
