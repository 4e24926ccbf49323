#include "crypto/aead.h"

#include <atomic>
#include <set>
#include <string>

#include "crypto/internal/nonce_aead.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace keyward::crypto {
namespace {

using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;

class AeadTest : public ::testing::TestWithParam<AeadAlgorithm> {
 protected:
  std::unique_ptr<Aead> MakeAead() {
    auto key = GenerateKey(kAeadKeySize);
    EXPECT_TRUE(key.ok());
    auto aead = NewAead(GetParam(), *key);
    EXPECT_TRUE(aead.ok()) << aead.status();
    return std::move(*aead);
  }
};

TEST_P(AeadTest, RoundTripsAtManySizes) {
  auto aead = MakeAead();
  for (size_t size : {0, 1, 15, 16, 17, 1000, 65536}) {
    std::string plaintext(size, 'p');
    KW_ASSERT_OK_AND_ASSIGN(std::string ct, aead->Encrypt(plaintext, "ad"));
    EXPECT_EQ(ct.size(),
              size + AeadNonceSize(GetParam()) + kAeadTagSize);
    KW_ASSERT_OK_AND_ASSIGN(SecretData pt, aead->Decrypt(ct, "ad"));
    EXPECT_EQ(pt.AsStringView(), plaintext);
  }
}

TEST_P(AeadTest, NoncesAreFreshPerMessage) {
  auto aead = MakeAead();
  std::set<std::string> nonces;
  for (int i = 0; i < 200; ++i) {
    KW_ASSERT_OK_AND_ASSIGN(std::string ct, aead->Encrypt("same", "same"));
    nonces.insert(ct.substr(0, AeadNonceSize(GetParam())));
  }
  EXPECT_EQ(nonces.size(), 200u);
}

TEST_P(AeadTest, EverySingleByteFlipIsRejected) {
  auto aead = MakeAead();
  KW_ASSERT_OK_AND_ASSIGN(std::string ct, aead->Encrypt("attack at dawn", "ad"));
  for (size_t i = 0; i < ct.size(); ++i) {
    std::string bad = ct;
    bad[i] ^= 0x01;
    EXPECT_THAT(aead->Decrypt(bad, "ad"),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("authentication failed")))
        << "byte " << i;
  }
}

TEST_P(AeadTest, WrongAssociatedDataOrKeyIsRejected) {
  auto aead = MakeAead();
  auto other = MakeAead();
  KW_ASSERT_OK_AND_ASSIGN(std::string ct, aead->Encrypt("secret", "tenant=a"));
  EXPECT_THAT(aead->Decrypt(ct, "tenant=b"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(other->Decrypt(ct, "tenant=a"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(AeadTest, TruncatedInputsAreRejected) {
  auto aead = MakeAead();
  KW_ASSERT_OK_AND_ASSIGN(std::string ct, aead->Encrypt("secret", ""));
  for (size_t len = 0; len < ct.size(); ++len) {
    EXPECT_FALSE(aead->Decrypt(ct.substr(0, len), "").ok()) << len;
  }
}

TEST_P(AeadTest, RejectsWrongKeySizes) {
  for (size_t size : {0, 16, 31, 33, 64}) {
    EXPECT_THAT(NewAead(GetParam(), SecretData(size)),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("32-byte key")));
  }
}

TEST_P(AeadTest, OpenZeroesOutputOnFailure) {
  KW_ASSERT_OK_AND_ASSIGN(SecretData key, GenerateKey(kAeadKeySize));
  KW_ASSERT_OK_AND_ASSIGN(auto raw, internal::NewNonceAead(GetParam(), key));
  std::string nonce(raw->nonce_size(), '\x07');
  std::string sealed(64 + kAeadTagSize, '\0');
  KW_ASSERT_OK(raw->Seal(nonce, std::string(64, 'm'), "",
                         {reinterpret_cast<uint8_t*>(sealed.data()),
                          sealed.size()}));
  sealed.back() ^= 1;
  std::string out(64, 'x');
  EXPECT_FALSE(raw->Open(nonce, sealed, "",
                         {reinterpret_cast<uint8_t*>(out.data()), out.size()})
                   .ok());
  EXPECT_EQ(out, std::string(64, '\0'));
}

TEST_P(AeadTest, InPlaceSealAndOpen) {
  KW_ASSERT_OK_AND_ASSIGN(SecretData key, GenerateKey(kAeadKeySize));
  KW_ASSERT_OK_AND_ASSIGN(auto raw, internal::NewNonceAead(GetParam(), key));
  std::string nonce(raw->nonce_size(), '\x01');
  std::string buf = std::string(100, 'z') + std::string(kAeadTagSize, '\0');
  auto* p = reinterpret_cast<uint8_t*>(buf.data());
  KW_ASSERT_OK(raw->Seal(nonce, absl::string_view(buf.data(), 100), "",
                         {p, buf.size()}));
  EXPECT_NE(buf.substr(0, 100), std::string(100, 'z'));
  KW_ASSERT_OK(raw->Open(nonce, buf, "", {p, 100}));
  EXPECT_EQ(buf.substr(0, 100), std::string(100, 'z'));
}

INSTANTIATE_TEST_SUITE_P(
    AllAlgorithms, AeadTest,
    ::testing::Values(AeadAlgorithm::kAes256Gcm,
                      AeadAlgorithm::kChaCha20Poly1305,
                      AeadAlgorithm::kXChaCha20Poly1305),
    [](const auto& param_info) {
      switch (param_info.param) {
        case AeadAlgorithm::kAes256Gcm: return std::string("Aes256Gcm");
        case AeadAlgorithm::kChaCha20Poly1305: return std::string("ChaCha");
        case AeadAlgorithm::kXChaCha20Poly1305: return std::string("XChaCha");
      }
      return std::string("unknown");
    });

}  // namespace
}  // namespace keyward::crypto

#include <thread>

namespace keyward::crypto {
namespace {

// One NonceAead used from several threads at once: each call either gets the
// cached context or keys its own, and every result must be right.
TEST(NonceAeadConcurrencyTest, ConcurrentSealAndOpen) {
  for (AeadAlgorithm algorithm :
       {AeadAlgorithm::kAes256Gcm, AeadAlgorithm::kChaCha20Poly1305}) {
    KW_ASSERT_OK_AND_ASSIGN(SecretData key, GenerateKey(kAeadKeySize));
    KW_ASSERT_OK_AND_ASSIGN(auto aead, internal::NewNonceAead(algorithm, key));
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 2000; ++i) {
          std::string nonce(12, static_cast<char>(t));
          nonce[11] = static_cast<char>(i);
          std::string pt(100 + t, static_cast<char>(i));
          std::string sealed(pt.size() + kAeadTagSize, '\0');
          auto* s = reinterpret_cast<uint8_t*>(sealed.data());
          if (!aead->Seal(nonce, pt, "ad", {s, sealed.size()}).ok()) ++failures;
          std::string back(pt.size(), '\0');
          if (!aead->Open(nonce, sealed, "ad",
                          {reinterpret_cast<uint8_t*>(back.data()), back.size()})
                   .ok() ||
              back != pt) {
            ++failures;
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(failures.load(), 0);
  }
}

}  // namespace
}  // namespace keyward::crypto
