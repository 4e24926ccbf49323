// Runs every applicable Project Wycheproof vector against the crypto core and
// prints `wycheproof <file>: <N> passed, <M> skipped` for release tooling.
// Skips are limited to parameters Keyward never uses, each with its reason.
#include <string>

#include "absl/strings/str_cat.h"
#include "crypto/aead.h"
#include "crypto/deterministic_aead.h"
#include "crypto/hkdf.h"
#include "crypto/hmac.h"
#include "crypto/internal/keyed_hmac_sha256.h"
#include "crypto/internal/nonce_aead.h"
#include "crypto/key_wrap.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "testing/wycheproof.h"

namespace keyward::crypto {
namespace {

using ::keyward::testing::HexDecode;
using ::keyward::testing::HexEncode;
using ::keyward::testing::LoadWycheproof;
using ::keyward::testing::WycheproofTally;
using Json = nlohmann::json;

std::string Field(const Json& test, const char* name) {
  return HexDecode(test.at(name).get<std::string>());
}

std::string Describe(const Json& test) {
  return absl::StrCat("tcId ", test.at("tcId").get<int>(), " (",
                      test.value("comment", ""), ")");
}

// Runs `check` on every test and tallies; `check` returns an empty string on
// pass, "skip:<reason>" to skip, or a failure description.
template <typename Check>
void RunFile(const char* file, Check check) {
  auto json = LoadWycheproof(file);
  ASSERT_TRUE(json.ok()) << json.status();
  WycheproofTally tally(file);
  int total = 0;
  for (const Json& group : (*json)["testGroups"]) {
    for (const Json& test : group["tests"]) {
      ++total;
      std::string outcome = check(group, test);
      if (outcome.empty()) {
        tally.Pass();
      } else if (outcome.rfind("skip:", 0) == 0) {
        tally.Skip(outcome.substr(5));
      } else {
        ADD_FAILURE() << file << " " << Describe(test) << ": " << outcome;
      }
    }
  }
  tally.Print();
  EXPECT_EQ(total, (*json)["numberOfTests"].get<int>());
  EXPECT_GT(tally.passed(), 0) << "no vector of " << file << " applied";
}

using NonceAeadFactory =
    absl::StatusOr<std::unique_ptr<internal::NonceAead>> (*)(AeadAlgorithm, const SecretData&);

absl::StatusOr<std::unique_ptr<internal::NonceAead>> Default(AeadAlgorithm algorithm,
                                                            const SecretData& key) {
  return internal::NewNonceAead(algorithm, key);
}

std::string CheckAead(AeadAlgorithm algorithm, const Json& group,
                      const Json& test, NonceAeadFactory factory = Default) {
  const int key_bits = group.at("keySize").get<int>();
  if (key_bits != 256) {
    return absl::StrCat("skip:", key_bits,
                        "-bit keys: Keyward's AEADs take 256-bit keys only "
                        "(docs/decisions/0002)");
  }
  if (group.at("tagSize").get<int>() != 128) {
    return "skip:tags shorter than 128 bits are never produced or accepted";
  }
  const std::string key = Field(test, "key"), iv = Field(test, "iv"),
                    aad = Field(test, "aad"), msg = Field(test, "msg"),
                    ct = Field(test, "ct"), tag = Field(test, "tag");
  const bool valid = test.at("result") == "valid";
  auto aead = factory(algorithm, SecretData::CopyFrom(key));
  if (!aead.ok()) return aead.status().ToString();
  const size_t nonce_bytes = AeadNonceSize(algorithm);

  if (iv.size() != nonce_bytes) {
    if (valid) {
      return absl::StrCat("skip:IVs other than ", nonce_bytes * 8,
                          " bits: Keyward generates and accepts only ",
                          nonce_bytes * 8, "-bit nonces (docs/decisions/0003)");
    }
    // Invalid nonce sizes must be refused by both directions.
    std::string out(msg.size() + kAeadTagSize, 'x');
    absl::Span<uint8_t> out_span(reinterpret_cast<uint8_t*>(out.data()),
                                 out.size());
    if ((*aead)->Seal(iv, msg, aad, out_span).ok()) {
      return "Seal accepted an invalid nonce size";
    }
    std::string pt(ct.size(), 'x');
    if ((*aead)->Open(iv, ct + tag, aad,
                      {reinterpret_cast<uint8_t*>(pt.data()), pt.size()})
            .ok()) {
      return "Open accepted an invalid nonce size";
    }
    return "";
  }

  // Decryption through the public, randomized interface.
  auto public_aead = NewAead(algorithm, SecretData::CopyFrom(key));
  if (!public_aead.ok()) return public_aead.status().ToString();
  auto opened = (*public_aead)->Decrypt(iv + ct + tag, aad);

  if (valid) {
    std::string sealed(msg.size() + kAeadTagSize, '\0');
    absl::Status s = (*aead)->Seal(
        iv, msg, aad,
        {reinterpret_cast<uint8_t*>(sealed.data()), sealed.size()});
    if (!s.ok()) return absl::StrCat("Seal failed: ", s.ToString());
    if (sealed != ct + tag) {
      return absl::StrCat("Seal gave ", HexEncode(sealed), ", expected ",
                          HexEncode(ct + tag));
    }
    if (!opened.ok()) return absl::StrCat("Decrypt failed: ", opened.status().ToString());
    if (opened->AsStringView() != msg) return "Decrypt gave the wrong plaintext";
    return "";
  }
  if (opened.ok()) return "Decrypt accepted an invalid ciphertext";
  // The explicit-nonce interface must also refuse, and zero its output.
  std::string pt(ct.size(), 'x');
  if ((*aead)->Open(iv, ct + tag, aad,
                    {reinterpret_cast<uint8_t*>(pt.data()), pt.size()})
          .ok()) {
    return "Open accepted an invalid ciphertext";
  }
  if (pt != std::string(ct.size(), '\0')) {
    return "Open left unverified bytes in its output";
  }
  return "";
}

TEST(WycheproofTest, AesGcm) {
  RunFile("aes_gcm_test.json", [](const Json& g, const Json& t) {
    return CheckAead(AeadAlgorithm::kAes256Gcm, g, t);
  });
}

// The field values' AES-256-GCM (libsodium's AES-NI code where available)
// passes the same vectors, in-place sealing included.
TEST(WycheproofTest, AesGcmForSmallRecords) {
  std::printf("AES-256-GCM for small records: %s\n",
              internal::SmallRecordAesGcmIsAccelerated() ? "libsodium (AES-NI)"
                                                         : "OpenSSL EVP (no AES-NI here)");
  RunFile("aes_gcm_test.json", [](const Json& g, const Json& t) {
    std::string outcome = CheckAead(
        AeadAlgorithm::kAes256Gcm, g, t,
        [](AeadAlgorithm, const SecretData& key) {
          return internal::NewAesGcmForSmallRecords(key);
        });
    if (!outcome.empty() || t.at("result") != "valid" || g.at("keySize") != 256 ||
        g.at("ivSize") != 96 || g.at("tagSize") != 128) {
      return outcome;
    }
    // In place: the output starts where the plaintext is.
    auto aead = internal::NewAesGcmForSmallRecords(SecretData::CopyFrom(Field(t, "key")));
    if (!aead.ok()) return aead.status().ToString();
    const std::string msg = Field(t, "msg");
    std::string buf = msg + std::string(kAeadTagSize, '\0');
    auto* p = reinterpret_cast<uint8_t*>(buf.data());
    absl::Status s = (*aead)->Seal(Field(t, "iv"), absl::string_view(buf.data(), msg.size()),
                                   Field(t, "aad"), {p, buf.size()});
    if (!s.ok() || buf != Field(t, "ct") + Field(t, "tag")) return std::string("in-place seal differs");
    std::string back = buf;
    s = (*aead)->Open(Field(t, "iv"), back, Field(t, "aad"),
                      {reinterpret_cast<uint8_t*>(back.data()), msg.size()});
    if (!s.ok() || back.substr(0, msg.size()) != msg) return std::string("in-place open differs");
    return std::string();
  });
}

TEST(WycheproofTest, ChaCha20Poly1305) {
  RunFile("chacha20_poly1305_test.json", [](const Json& g, const Json& t) {
    return CheckAead(AeadAlgorithm::kChaCha20Poly1305, g, t);
  });
}

TEST(WycheproofTest, XChaCha20Poly1305) {
  RunFile("xchacha20_poly1305_test.json", [](const Json& g, const Json& t) {
    return CheckAead(AeadAlgorithm::kXChaCha20Poly1305, g, t);
  });
}

TEST(WycheproofTest, AesSivCmac) {
  RunFile("aes_siv_cmac_test.json", [](const Json& group,
                                       const Json& test) -> std::string {
    const int key_bits = group.at("keySize").get<int>();
    if (key_bits != 512) {
      return absl::StrCat("skip:", key_bits,
                          "-bit SIV keys: Keyward uses AES-256-SIV (512-bit "
                          "keys) only (docs/decisions/0004)");
    }
    auto daead = DeterministicAead::New(SecretData::CopyFrom(Field(test, "key")));
    if (!daead.ok()) return daead.status().ToString();
    const std::string aad = Field(test, "aad"), msg = Field(test, "msg"),
                      ct = Field(test, "ct");
    auto opened = (*daead)->DecryptDeterministically(ct, aad);
    if (test.at("result") == "valid") {
      auto sealed = (*daead)->EncryptDeterministically(msg, aad);
      if (!sealed.ok()) return sealed.status().ToString();
      if (*sealed != ct) {
        return absl::StrCat("encrypt gave ", HexEncode(*sealed), ", expected ",
                            HexEncode(ct));
      }
      if (!opened.ok()) return opened.status().ToString();
      if (opened->AsStringView() != msg) return "wrong plaintext";
      return "";
    }
    return opened.ok() ? "accepted an invalid ciphertext" : "";
  });
}

TEST(WycheproofTest, AesKwp) {
  RunFile("aes_kwp_test.json", [](const Json& group,
                                  const Json& test) -> std::string {
    const int key_bits = group.at("keySize").get<int>();
    if (key_bits != 256) {
      return absl::StrCat("skip:", key_bits,
                          "-bit KEKs: Keyward wraps under 256-bit keys only "
                          "(docs/decisions/0005)");
    }
    auto wrap = KeyWrap::New(SecretData::CopyFrom(Field(test, "key")));
    if (!wrap.ok()) return wrap.status().ToString();
    const std::string msg = Field(test, "msg"), ct = Field(test, "ct");
    auto unwrapped = (*wrap)->Unwrap(ct);
    if (test.at("result") == "valid") {
      auto wrapped = (*wrap)->Wrap(SecretData::CopyFrom(msg));
      if (!wrapped.ok()) return wrapped.status().ToString();
      if (*wrapped != ct) {
        return absl::StrCat("wrap gave ", HexEncode(*wrapped), ", expected ",
                            HexEncode(ct));
      }
      if (!unwrapped.ok()) return unwrapped.status().ToString();
      if (unwrapped->AsStringView() != msg) return "wrong unwrapped key";
      return "";
    }
    return unwrapped.ok() ? "accepted an invalid wrapped key" : "";
  });
}

TEST(WycheproofTest, HkdfSha256) {
  RunFile("hkdf_sha256_test.json", [](const Json&,
                                      const Json& test) -> std::string {
    auto okm = Hkdf(HashFunction::kSha256, Field(test, "ikm"),
                    Field(test, "salt"), Field(test, "info"),
                    test.at("size").get<size_t>());
    if (test.at("result") == "valid") {
      if (!okm.ok()) return okm.status().ToString();
      if (okm->AsStringView() != Field(test, "okm")) return "wrong output";
      return "";
    }
    return okm.ok() ? "accepted an invalid output size" : "";
  });
}

TEST(WycheproofTest, HmacSha256) {
  RunFile("hmac_sha256_test.json", [](const Json& group,
                                      const Json& test) -> std::string {
    const size_t tag_bytes = group.at("tagSize").get<size_t>() / 8;
    auto mac = HmacSha256::New(SecretData::CopyFrom(Field(test, "key")),
                               tag_bytes);
    if (!mac.ok()) return mac.status().ToString();
    const std::string msg = Field(test, "msg"), tag = Field(test, "tag");
    absl::Status verified = (*mac)->VerifyMac(tag, msg);
    if (test.at("result") == "valid") {
      auto computed = (*mac)->ComputeMac(msg);
      if (!computed.ok()) return computed.status().ToString();
      if (*computed != tag) return "wrong tag";
      return verified.ok() ? "" : verified.ToString();
    }
    return verified.ok() ? "accepted a modified tag" : "";
  });
}

// The blind indexes' HMAC-SHA-256, keyed once and copied per computation
// (crypto/internal/keyed_hmac_sha256.h), on the same vectors; the message
// is also fed in pieces to exercise the streaming path.
TEST(WycheproofTest, KeyedHmacSha256) {
  RunFile("hmac_sha256_test.json", [](const Json&, const Json& test) -> std::string {
    auto mac = internal::KeyedHmacSha256::New(SecretData::CopyFrom(Field(test, "key")));
    if (!mac.ok()) return mac.status().ToString();
    const std::string msg = Field(test, "msg"), tag = Field(test, "tag");
    const bool verified = (*mac)->Verify(tag, msg);
    if (test.at("result") == "valid") {
      internal::HmacSha256Tag full = (*mac)->Mac(msg);
      if (std::string(full.begin(), full.begin() + tag.size()) != tag) return "wrong tag";
      auto c = (*mac)->Start();
      for (size_t i = 0; i < msg.size(); i += 7) c.Update(absl::string_view(msg).substr(i, 7));
      if (c.Final() != full) return "streamed tag differs";
      return verified ? "" : "valid tag refused";
    }
    return verified ? "accepted a modified tag" : "";
  });
}

}  // namespace
}  // namespace keyward::crypto
