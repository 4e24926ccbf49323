// Each detector on values it must accept and look-alikes it must refuse,
// and the masking of report examples.
#include "classify/detectors.h"

#include <random>
#include <string>

#include "absl/strings/escaping.h"
#include "classify/scan_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace keyward::classify {
namespace {

using ::keyward::classify::testing::LuhnCheckDigit;
using ::keyward::classify::testing::RandomDigits;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;

TEST(Luhn, ChecksTheCheckDigit) {
  EXPECT_TRUE(LuhnValid("79927398713"));
  EXPECT_TRUE(LuhnValid("4111111111111111"));
  EXPECT_FALSE(LuhnValid("4111111111111112"));
  EXPECT_FALSE(LuhnValid("79927398710"));
  EXPECT_FALSE(LuhnValid(""));
  EXPECT_FALSE(LuhnValid("4111-1111"));
}

TEST(Luhn, CatchesEverySingleDigitError) {
  const std::string valid = "4539578763621486";
  ASSERT_TRUE(LuhnValid(valid));
  for (size_t i = 0; i < valid.size(); ++i) {
    for (char d = '0'; d <= '9'; ++d) {
      if (d == valid[i]) continue;
      std::string changed = valid;
      changed[i] = d;
      EXPECT_FALSE(LuhnValid(changed)) << changed;
    }
  }
}

TEST(CardIssuer, KnownRangesAndLengths) {
  EXPECT_TRUE(KnownCardIssuer("4111111111111111"));  // Visa 16
  EXPECT_TRUE(KnownCardIssuer("4222222222222"));     // Visa 13
  EXPECT_TRUE(KnownCardIssuer("5105105105105100"));  // Mastercard 51
  EXPECT_TRUE(KnownCardIssuer("2221000000000009"));  // Mastercard 2221
  EXPECT_TRUE(KnownCardIssuer("2720990000000000"));  // Mastercard 2720
  EXPECT_FALSE(KnownCardIssuer("2721000000000000"));
  EXPECT_FALSE(KnownCardIssuer("5605105105105100"));
  EXPECT_TRUE(KnownCardIssuer("378282246310005"));    // Amex 15
  EXPECT_FALSE(KnownCardIssuer("3782822463100050"));  // Amex is never 16
  EXPECT_TRUE(KnownCardIssuer("6011111111111117"));   // Discover
  EXPECT_TRUE(KnownCardIssuer("6500000000000002"));
  EXPECT_TRUE(KnownCardIssuer("6440000000000000"));
  EXPECT_TRUE(KnownCardIssuer("3530111333300000"));  // JCB
  EXPECT_FALSE(KnownCardIssuer("3527111333300000"));
  EXPECT_TRUE(KnownCardIssuer("30569309025904"));  // Diners 14
  EXPECT_TRUE(KnownCardIssuer("36000000000008"));
  EXPECT_FALSE(KnownCardIssuer("1234567812345678"));
  EXPECT_FALSE(KnownCardIssuer("411111111111"));  // too short
}

TEST(CardNumber, AcceptsValidNumbersInCommonLayouts) {
  for (const char* card :
       {"4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111",
        "378282246310005", "3782 822463 10005", "5555555555554444",
        "6011111111111117", "3530111333300000", "30569309025904",
        "  4111111111111111 "}) {
    EXPECT_TRUE(IsCardNumber(card)) << card;
  }
}

TEST(CardNumber, RefusesLookAlikes) {
  for (const char* value :
       {"4111111111111112", "4111  1111 1111 1111", "4111-1111 1111-111x",
        "-4111111111111111", "4111111111111111-", "1234567812345670",
        "411111111111111", "4111111111111111 ok", ""}) {
    EXPECT_FALSE(IsCardNumber(value)) << value;
  }
}

TEST(CardNumber, RandomDigitsFailingLuhnAreNeverCards) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string n = "4" + RandomDigits(rng, 14);
    n.push_back(
        static_cast<char>('0' + (LuhnCheckDigit(n) - '0' + 1 + i % 9) % 10));
    EXPECT_FALSE(IsCardNumber(n)) << n;
  }
}

TEST(Email, AcceptsAddresses) {
  for (const char* v :
       {"jane@example.com", "j.doe+news@mail.example.co.uk", "a_b-c@x-y.org",
        "o'brien@example.ie", "X@EXAMPLE.COM"}) {
    EXPECT_TRUE(IsEmail(v)) << v;
  }
}

TEST(Email, RefusesNonAddresses) {
  for (const char* v :
       {"jane", "jane@", "@example.com", "jane@example", "jane@@example.com",
        "jane@example.c", "jane@example.123", ".jane@example.com",
        "ja..ne@example.com", "jane doe@example.com", "jane@-example.com",
        "user@host@example.com", "see jane@example.com"}) {
    EXPECT_FALSE(IsEmail(v)) << v;
  }
}

TEST(Iban, AcceptsValidIbans) {
  for (const char* v :
       {"DE89 3704 0044 0532 0130 00", "DE89370400440532013000",
        "GB82WEST12345698765432", "FR1420041010050500013M02606",
        "NL91ABNA0417164300", "BE68539007547034", "gb82west12345698765432"}) {
    EXPECT_TRUE(IsIban(v)) << v;
  }
}

TEST(Iban, RefusesBadCheckDigitsLengthsAndShapes) {
  for (const char* v : {"DE88370400440532013000",  // check digits
                        "DE8937040044053201300",   // one short for DE
                        "GB82WEST1234569876543X",  // changed
                        "1289370400440532013000",  // no country
                        "DE89-3704-0044-0532-0130-00", "DE89", ""}) {
    EXPECT_FALSE(IsIban(v)) << v;
  }
}

TEST(Phone, AcceptsInternationalAndSeparatedNationalNumbers) {
  for (const char* v :
       {"+1 415 555 2671", "+44 20 7946 0958", "+4915123456789",
        "+33 (0)1 23 45 67 89", "(415) 555-2671", "415-555-2671",
        "415.555.2671", "020 7946 0958", "030 1234567"}) {
    EXPECT_TRUE(IsPhoneNumber(v)) << v;
  }
}

TEST(Phone, RefusesPlainNumbersAndOtherSeparatedDigits) {
  for (const char* v :
       {"4155552671", "12345678", "1 000 000 000", "192.168.100.200",
        "2024-01-15", "+0123456789", "+12 34", "415-555-267a", "(415 555-2671",
        "123-45-6789", "3.14159265358979", "1234.567890", ""}) {
    EXPECT_FALSE(IsPhoneNumber(v)) << v;
  }
}

TEST(Ssn, AcceptsIssuableNumbersWithDashes) {
  EXPECT_TRUE(IsSsn("123-45-6789"));
  EXPECT_TRUE(IsSsn("899-99-9999"));
}

TEST(Ssn, RefusesNeverIssuedRangesAndOtherShapes) {
  for (const char* v :
       {"000-12-3456", "666-12-3456", "900-12-3456", "999-12-3456",
        "123-00-4567", "123-45-0000", "078-05-1120", "123456789", "123 45 6789",
        "12-345-6789", "123-45-678a"}) {
    EXPECT_FALSE(IsSsn(v)) << v;
  }
}

TEST(Jwt, AcceptsTokensWithAnAlgHeader) {
  const std::string token =
      absl::WebSafeBase64Escape(R"({"alg":"RS256","kid":"k1"})") + "." +
      absl::WebSafeBase64Escape(R"({"sub":"42"})") + ".c2lnbmF0dXJl";
  EXPECT_TRUE(IsJwt(token));
  // An unsecured token has an empty signature.
  EXPECT_TRUE(IsJwt(absl::WebSafeBase64Escape(R"({"alg":"none"})") + "." +
                    absl::WebSafeBase64Escape("{}") + "."));
}

TEST(Jwt, RefusesOtherDottedValues) {
  EXPECT_FALSE(IsJwt("a.b.c"));
  EXPECT_FALSE(IsJwt("www.example.com"));
  EXPECT_FALSE(IsJwt(absl::WebSafeBase64Escape(R"({"typ":"JWT"})") +
                     ".e30.sig"));  // no alg
  EXPECT_FALSE(IsJwt(absl::WebSafeBase64Escape(R"({"alg":"HS256"})") +
                     ".e30"));  // two parts
  EXPECT_FALSE(IsJwt("eyJub3QganNvbg.e30.sig"));
}

TEST(ApiKey, AcceptsWellKnownPrefixes) {
  for (const char* v :
       {"sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_test_51H8abcdEFGHijklMNOPqrst",
        "AKIAIOSFODNN7EXAMPLE", "ghp_1234567890abcdefghijABCDEFGHIJ123456",
        "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp",
        "AIzaSyA1234567890abcdefghijklmnopqrstuv",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA "
        "PRIVATE KEY-----"}) {
    EXPECT_TRUE(IsApiKey(v)) << v;
  }
}

TEST(ApiKey, AcceptsMostRandomTokens) {
  std::mt19937_64 rng(11);
  int base64_hits = 0, hex_hits = 0;
  for (int i = 0; i < 500; ++i) {
    std::string bytes;
    for (int b = 0; b < 30; ++b) bytes.push_back(static_cast<char>(rng()));
    base64_hits +=
        IsApiKey(absl::WebSafeBase64Escape(bytes)) ? 1 : 0;  // 40 chars
    hex_hits += IsApiKey(absl::BytesToHexString(bytes.substr(0, 20)))
                    ? 1
                    : 0;  // 40 chars
  }
  EXPECT_GE(base64_hits, 475);  // 95%
  EXPECT_GE(hex_hits, 475);
}

TEST(ApiKey, RefusesIdentifiersPathsUuidsAndProse) {
  for (const char* v : {"ThisIsAVeryLongIdentifierNameForSomethingElse",
                        "customer_account_balance_summary_2023_q4",
                        "/usr/local/lib/x86_64-linux-gnu/libfoo.so.1.2.3",
                        "550e8400-e29b-41d4-a716-446655440000",
                        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                        "0000000000000000000000000000000000000000",
                        "The quick brown fox jumps over the lazy dog 12 times",
                        "getUserAccountBalanceForCustomer2ndQuarter",
                        "AKIAiosfodnn7example", "sk_live_short", "short"}) {
    EXPECT_FALSE(IsApiKey(v)) << v;
  }
}

TEST(Entropy, BitsPerCharacter) {
  EXPECT_DOUBLE_EQ(ShannonEntropy(""), 0);
  EXPECT_DOUBLE_EQ(ShannonEntropy("aaaa"), 0);
  EXPECT_DOUBLE_EQ(ShannonEntropy("abab"), 1);
  EXPECT_DOUBLE_EQ(ShannonEntropy("abcdefgh"), 3);
}

TEST(Detect, NamesTheKindOrNothing) {
  EXPECT_THAT(Detect("4111 1111 1111 1111"), Optional(Kind::kCard));
  EXPECT_THAT(Detect("jane@example.com"), Optional(Kind::kEmail));
  EXPECT_THAT(Detect("GB82WEST12345698765432"), Optional(Kind::kIban));
  EXPECT_THAT(Detect("+44 20 7946 0958"), Optional(Kind::kPhone));
  EXPECT_THAT(Detect("123-45-6789"), Optional(Kind::kSsn));
  EXPECT_THAT(Detect("AKIAIOSFODNN7EXAMPLE"), Optional(Kind::kApiKey));
  for (const char* v : {"", "42", "hello world", "Prefers email over phone.",
                        "2024-01-15", "4111111111111112", "3.25"}) {
    EXPECT_EQ(Detect(v), std::nullopt) << v;
  }
}

TEST(KindNames, ClassesAndNames) {
  EXPECT_EQ(KindName(Kind::kApiKey), "api-key");
  EXPECT_EQ(ClassOf(Kind::kCard), "pci");
  EXPECT_EQ(ClassOf(Kind::kEmail), "pii");
  EXPECT_EQ(ClassOf(Kind::kIban), "pii");
  EXPECT_EQ(ClassOf(Kind::kPhone), "pii");
  EXPECT_EQ(ClassOf(Kind::kSsn), "pii");
  EXPECT_EQ(ClassOf(Kind::kJwt), "secret");
  EXPECT_EQ(ClassOf(Kind::kApiKey), "secret");
}

TEST(KeywardCiphertext, RecognisesFieldValuesAndMessages) {
  EXPECT_TRUE(IsKeywardCiphertext("kw1.AAECAwQ", false));
  EXPECT_TRUE(IsKeywardCiphertext("kw1.AAECAwQ", true));
  EXPECT_TRUE(IsKeywardCiphertext(std::string("\x11\x01\x02", 3), true));
  EXPECT_FALSE(IsKeywardCiphertext(std::string("\x11\x01\x02", 3), false));
  EXPECT_TRUE(IsKeywardCiphertext("KWRD\x01", true));
  EXPECT_FALSE(IsKeywardCiphertext("kw2.AAECAwQ", false));
  EXPECT_FALSE(IsKeywardCiphertext("jane@example.com", false));
  EXPECT_FALSE(IsKeywardCiphertext("", true));
}

TEST(Mask, NeverShowsTheWholeValue) {
  EXPECT_EQ(Mask(Kind::kCard, "4111 1111 1111 1234"), "•••• •••• •••• 1234");
  EXPECT_EQ(Mask(Kind::kCard, "378282246310005"), "•••• •••• •••• 0005");
  EXPECT_EQ(Mask(Kind::kEmail, "jane.doe@example.com"), "j•••@example.com");
  EXPECT_EQ(Mask(Kind::kIban, "GB82WEST12345698765432"), "GB•••32");
  EXPECT_EQ(Mask(Kind::kSsn, "123-45-6789"), "12•••89");
  EXPECT_EQ(Mask(Kind::kPhone, "+1 415 555 2671"), "+1•••71");
  EXPECT_EQ(Mask(Kind::kApiKey, "short"), "•••");
  const std::string key = "sk_live_4eC39HqLyjWDarjtT1zdp7dc";
  EXPECT_THAT(Mask(Kind::kApiKey, key), Not(HasSubstr("4eC39Hq")));
}

}  // namespace
}  // namespace keyward::classify
