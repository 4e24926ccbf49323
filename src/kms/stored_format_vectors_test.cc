// Frozen vectors for what keywardd stores and hands out besides messages:
// the wrapped data-key blob (kms/data_key_blob.h), versions 1 and 2 (the
// tenant layer), and the associated data that seals each KEK and each
// tenant key under the root key.  A change that would strand data
// already stored (a moved field, a different digest or AAD) fails here.
// tests/vectors/kms_v1/README.md says how the file was made; it is never
// regenerated to make this test pass.
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "crypto/aead.h"
#include "format/header.h"
#include "gtest/gtest.h"
#include "keyward/secret_data.h"
#include "kms/data_key_blob.h"
#include "nlohmann/json.hpp"
#include "testing/status_matchers.h"

namespace keyward::kms {
namespace {

std::string Unhex(const nlohmann::json& v) { return absl::HexStringToBytes(v.get<std::string>()); }

nlohmann::json Load(const std::string& name) {
  std::ifstream in("tests/vectors/kms_v1/" + name);
  EXPECT_TRUE(in.good()) << "tests/vectors/kms_v1/" << name << " is missing";
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

EncryptionContext ContextOf(const nlohmann::json& j) {
  EncryptionContext c;
  for (auto& [k, v] : j.items()) c[k] = v.get<std::string>();
  return c;
}

TEST(StoredFormatVectors, WrappedDataKeyBlobs) {
  const nlohmann::json file = Load("data_key_blob.json");
  ASSERT_GE(file["vectors"].size(), 3u);
  int ran = 0;
  for (const auto& v : file["vectors"]) {
    SCOPED_TRACE(v["name"].get<std::string>());
    const EncryptionContext context = ContextOf(v["context"]);
    DataKeyBlob blob{v["environment"], v["key_name"], v["key_version"].get<uint32_t>(),
                     ContextDigest(context), Unhex(v["sealed"])};
    EXPECT_EQ(absl::BytesToHexString(blob.context_digest), v["context_digest"]);
    // Encoding and decoding agree with the stored bytes.
    EXPECT_EQ(absl::BytesToHexString(EncodeBlob(blob)), v["blob"]);
    auto decoded_or = DecodeBlob(Unhex(v["blob"]));
    ASSERT_TRUE(decoded_or.ok()) << decoded_or.status();
    const DataKeyBlob& decoded = *decoded_or;
    EXPECT_EQ(decoded.environment, blob.environment);
    EXPECT_EQ(decoded.key_name, blob.key_name);
    EXPECT_EQ(decoded.key_version, blob.key_version);
    EXPECT_EQ(decoded.sealed, blob.sealed);
    // The associated data, and the stored seal still opens under the KEK.
    const std::string aad = DataKeyAad(decoded, context);
    EXPECT_EQ(absl::BytesToHexString(aad), v["aad"]);
    KW_ASSERT_OK_AND_ASSIGN(auto kek, crypto::NewAead(crypto::AeadAlgorithm::kAes256Gcm,
                                                      SecretData::CopyFrom(Unhex(v["kek"]))));
    KW_ASSERT_OK_AND_ASSIGN(SecretData data_key, kek->Decrypt(decoded.sealed, aad));
    EXPECT_EQ(absl::BytesToHexString(data_key.AsStringView()), v["data_key"]);
    ++ran;
  }
  std::printf("kms_v1 data_key_blob.json: %d vectors\n", ran);
}

TEST(StoredFormatVectors, KekAssociatedData) {
  const nlohmann::json file = Load("kek_aad.json");
  ASSERT_GE(file["vectors"].size(), 3u);
  for (const auto& v : file["vectors"]) {
    EXPECT_EQ(absl::BytesToHexString(
                  KekAad(v["environment"].get<std::string>(), v["key_name"].get<std::string>(),
                         v["key_version"].get<uint32_t>())),
              v["aad"]);
  }
}

// Blob version 2: the same layout with the larger seal, and inside it the
// data key sealed under the tenant key (kms/data_key_blob.h).
TEST(StoredFormatVectors, TenantWrappedDataKeyBlobs) {
  const nlohmann::json file = Load("tenant_data_key_blob.json");
  ASSERT_GE(file["vectors"].size(), 3u);
  int ran = 0;
  for (const auto& v : file["vectors"]) {
    SCOPED_TRACE(v["name"].get<std::string>());
    const EncryptionContext context = ContextOf(v["context"]);
    ASSERT_FALSE(context.at(kTenantContextKey).empty());
    DataKeyBlob blob{v["environment"], v["key_name"], v["key_version"].get<uint32_t>(),
                     ContextDigest(context), Unhex(v["sealed"]), kTenantBlobVersion};
    EXPECT_EQ(absl::BytesToHexString(blob.context_digest), v["context_digest"]);
    EXPECT_EQ(absl::BytesToHexString(EncodeBlob(blob)), v["blob"]);
    auto decoded_or = DecodeBlob(Unhex(v["blob"]));
    ASSERT_TRUE(decoded_or.ok()) << decoded_or.status();
    const DataKeyBlob& decoded = *decoded_or;
    EXPECT_EQ(decoded.version, kTenantBlobVersion);
    EXPECT_EQ(decoded.sealed.size(), kTenantSealedDataKeySize);
    EXPECT_EQ(decoded.key_name, blob.key_name);
    EXPECT_EQ(decoded.key_version, blob.key_version);
    const std::string serialized = format::SerializeContext(context);
    const std::string aad = DataKeyAad(decoded, context);
    EXPECT_EQ(absl::BytesToHexString(aad), v["aad"]);
    const std::string inner_aad = TenantDataKeyAadSerialized(decoded, serialized);
    EXPECT_EQ(absl::BytesToHexString(inner_aad), v["inner_aad"]);
    KW_ASSERT_OK_AND_ASSIGN(auto kek, crypto::NewAead(crypto::AeadAlgorithm::kAes256Gcm,
                                                      SecretData::CopyFrom(Unhex(v["kek"]))));
    KW_ASSERT_OK_AND_ASSIGN(SecretData inner, kek->Decrypt(decoded.sealed, aad));
    EXPECT_EQ(absl::BytesToHexString(inner.AsStringView()), v["inner"]);
    KW_ASSERT_OK_AND_ASSIGN(auto tenant_key,
                            crypto::NewAead(crypto::AeadAlgorithm::kAes256Gcm,
                                            SecretData::CopyFrom(Unhex(v["tenant_key"]))));
    KW_ASSERT_OK_AND_ASSIGN(SecretData data_key,
                            tenant_key->Decrypt(inner.AsStringView(), inner_aad));
    EXPECT_EQ(absl::BytesToHexString(data_key.AsStringView()), v["data_key"]);
    ++ran;
  }
  std::printf("kms_v1 tenant_data_key_blob.json: %d vectors\n", ran);
}

TEST(StoredFormatVectors, TenantKeyAssociatedData) {
  const nlohmann::json file = Load("tenant_key_aad.json");
  ASSERT_GE(file["vectors"].size(), 3u);
  for (const auto& v : file["vectors"]) {
    EXPECT_EQ(absl::BytesToHexString(TenantKeyAad(v["environment"].get<std::string>(),
                                                  v["key_name"].get<std::string>(),
                                                  v["tenant"].get<std::string>())),
              v["aad"]);
  }
}

}  // namespace
}  // namespace keyward::kms
