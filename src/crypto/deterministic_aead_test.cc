#include "crypto/deterministic_aead.h"

#include <openssl/evp.h>

#include <memory>
#include <string>

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

TEST(DeterministicAeadTest, EmptyPlaintextsRoundTrip) {
  KW_ASSERT_OK_AND_ASSIGN(SecretData key, GenerateKey(kAesSivKeySize));
  KW_ASSERT_OK_AND_ASSIGN(auto daead, DeterministicAead::New(key));
  KW_ASSERT_OK_AND_ASSIGN(std::string a, daead->EncryptDeterministically("", "x"));
  KW_ASSERT_OK_AND_ASSIGN(std::string b, daead->EncryptDeterministically("", "x"));
  KW_ASSERT_OK_AND_ASSIGN(std::string c, daead->EncryptDeterministically("", "y"));
  KW_ASSERT_OK_AND_ASSIGN(std::string d, daead->EncryptDeterministically("", ""));
  EXPECT_EQ(a.size(), kAesSivTagSize);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, d);
  KW_ASSERT_OK_AND_ASSIGN(SecretData pt, daead->DecryptDeterministically(a, "x"));
  EXPECT_TRUE(pt.empty());
  KW_ASSERT_OK_AND_ASSIGN(pt, daead->DecryptDeterministically(d, ""));
  EXPECT_TRUE(pt.empty());
  // The tag of an empty plaintext is still bound to the associated data.
  EXPECT_THAT(daead->DecryptDeterministically(a, "y"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // A 16-byte input that was never produced is refused.
  EXPECT_THAT(daead->DecryptDeterministically(std::string(16, 'a'), "x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  for (size_t i = 0; i < a.size(); ++i) {
    std::string bad = a;
    bad[i] ^= 0x01;
    EXPECT_THAT(daead->DecryptDeterministically(bad, "x"),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << "byte " << i;
  }
}

// Plaintexts around the block size take S2V's two paths (pad below 16
// bytes, xorend from 16 on); each must round-trip and reject tampering.
TEST(DeterministicAeadTest, LengthsAroundTheBlockSizeRoundTrip) {
  KW_ASSERT_OK_AND_ASSIGN(SecretData key, GenerateKey(kAesSivKeySize));
  KW_ASSERT_OK_AND_ASSIGN(auto daead, DeterministicAead::New(key));
  for (size_t n : {1, 15, 16, 17, 31, 32, 33, 100}) {
    std::string msg(n, '\0');
    for (size_t i = 0; i < n; ++i) msg[i] = static_cast<char>(i * 7 + n);
    KW_ASSERT_OK_AND_ASSIGN(std::string ct, daead->EncryptDeterministically(msg, "ad"));
    ASSERT_EQ(ct.size(), n + kAesSivTagSize);
    EXPECT_NE(ct.substr(kAesSivTagSize), msg) << n;
    KW_ASSERT_OK_AND_ASSIGN(SecretData pt, daead->DecryptDeterministically(ct, "ad"));
    EXPECT_EQ(pt.AsStringView(), msg) << n;
    std::string bad = ct;
    bad.back() ^= 0x01;
    EXPECT_FALSE(daead->DecryptDeterministically(bad, "ad").ok()) << n;
  }
}

// OpenSSL's own AES-256-SIV cipher, for the non-empty plaintexts it can
// process: an independent reference for the composition in
// deterministic_aead.cc.
std::string OpenSslSiv(const SecretData& key, const std::string& aad,
                       const std::string& msg) {
  std::unique_ptr<EVP_CIPHER, decltype(&EVP_CIPHER_free)> cipher(
      EVP_CIPHER_fetch(nullptr, "AES-256-SIV", nullptr), &EVP_CIPHER_free);
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(
      EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  std::string out(16 + msg.size(), '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  int len = 0;
  if (cipher == nullptr || ctx == nullptr ||
      EVP_EncryptInit_ex2(ctx.get(), cipher.get(), key.data(), nullptr, nullptr) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), o + 16, &len,
                        reinterpret_cast<const unsigned char*>(msg.data()),
                        static_cast<int>(msg.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), o + 16 + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, 16, o) != 1) {
    return "openssl failed";
  }
  return out;
}

TEST(DeterministicAeadTest, MatchesOpenSslsSivCipherForNonEmptyPlaintexts) {
  KW_ASSERT_OK_AND_ASSIGN(SecretData key, GenerateKey(kAesSivKeySize));
  KW_ASSERT_OK_AND_ASSIGN(auto daead, DeterministicAead::New(key));
  for (size_t n : {1, 15, 16, 17, 32, 33, 1000}) {
    KW_ASSERT_OK_AND_ASSIGN(const std::string m, RandomBytes(n));
    for (const std::string& aad : {std::string(), std::string("ad"), std::string(40, 'a')}) {
      KW_ASSERT_OK_AND_ASSIGN(std::string ct, daead->EncryptDeterministically(m, aad));
      EXPECT_EQ(ct, OpenSslSiv(key, aad, m)) << n << " " << aad.size();
    }
  }
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
