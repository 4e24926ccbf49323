// Decodes every frozen vector of tests/vectors/format_v1/: positive vectors
// must decrypt to their plaintext, re-encrypt to the exact same bytes from
// their recorded inputs and match the recorded intermediate values; negative
// vectors must fail with their recorded error.
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "absl/strings/escaping.h"
#include "crypto/hkdf.h"
#include "format/encrypt_materials.h"
#include "format/header.h"
#include "format/wire.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keyward/errors.h"
#include "keyward/message.h"
#include "keyward/raw_aes_keyring.h"
#include "nlohmann/json.hpp"
#include "testing/keyrings.h"
#include "testing/status_matchers.h"

namespace keyward {
namespace {

using Json = nlohmann::json;

Json Load(const std::string& name) {
  std::ifstream in("tests/vectors/format_v1/" + name);
  EXPECT_TRUE(in) << "missing tests/vectors/format_v1/" << name
                  << " (tests run from the repository root)";
  std::stringstream ss;
  ss << in.rdbuf();
  return Json::parse(ss.str());
}

std::string Unhex(const Json& j) {
  return absl::HexStringToBytes(j.get<std::string>());
}

EncryptionContext Context(const Json& j) {
  EncryptionContext c;
  for (auto it = j.begin(); it != j.end(); ++it) c[it.key()] = it.value();
  return c;
}

std::map<std::string, std::unique_ptr<RawAesKeyring>> Keyrings(const Json& keys) {
  std::map<std::string, std::unique_ptr<RawAesKeyring>> out;
  for (auto it = keys.begin(); it != keys.end(); ++it) {
    auto k = RawAesKeyring::FromKey(SecretData::CopyFrom(Unhex(it.value()["key"])));
    EXPECT_TRUE(k.ok());
    EXPECT_EQ((*k)->key_id(), it.value()["id"].get<std::string>());
    out[it.key()] = std::move(*k);
  }
  return out;
}

void CheckPositiveFile(const std::string& name, int* checked) {
  Json file = Load(name);
  auto keyrings = Keyrings(file["raw_keys"]);
  for (const Json& v : file["vectors"]) {
    SCOPED_TRACE(name + " " + v["name"].get<std::string>());
    const std::string message = Unhex(v["message"]);
    const std::string plaintext = Unhex(v["plaintext"]);
    // Each wrapped key alone opens the message.
    for (const Json& w : v["wrapped_keys"]) {
      testing::Keyrings one{keyrings.at(w["raw_key"]).get()};
      DecryptOptions opts;
      opts.expected_context = Context(v["context"]);
      auto back = DecryptMessage(message, one, opts);
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_EQ(back->AsStringView(), plaintext);
    }
    // The key schedule's intermediate values.
    const SecretData data_key = SecretData::CopyFrom(Unhex(v["data_key"]));
    auto okm = crypto::HkdfExpand(crypto::HashFunction::kSha256,
                                  data_key.AsStringView(), Unhex(v["hkdf_info"]), 64);
    ASSERT_TRUE(okm.ok());
    EXPECT_EQ(okm->AsStringView().substr(0, 32), Unhex(v["message_key"]));
    EXPECT_EQ(okm->AsStringView().substr(32), Unhex(v["commitment"]));
    if (!v.value("canonical", true)) {
      ++*checked;
      continue;  // hand-built; Keyward's encoder never writes this shape
    }
    if (v.contains("signature")) {
      // ECDSA signatures are randomized: the encoder cannot reproduce the
      // frozen bytes.  The message ends with exactly the recorded
      // signature, under the recorded key, which the context carries.
      const std::string sig = Unhex(v["signature"]);
      ASSERT_GT(message.size(), sig.size() + 2);
      EXPECT_EQ(message.substr(message.size() - sig.size()), sig);
      EXPECT_EQ(format::LoadBigEndian(
                    absl::string_view(message).substr(message.size() - sig.size() - 2, 2)),
                sig.size());
      auto point = format::SigningKeyOf(static_cast<Suite>(v["suite_id"].get<int>()),
                                        Context(v["context"]));
      ASSERT_TRUE(point.ok()) << point.status();
      EXPECT_EQ(*point, Unhex(v["signing_key"]));
      auto info = InspectMessage(message);
      ASSERT_TRUE(info.ok());
      EXPECT_EQ(info->signature_bytes, sig.size());
      EXPECT_EQ(info->frames, v["frames"].get<uint64_t>());
      ++*checked;
      continue;
    }
    // The encoder reproduces the frozen bytes from the recorded inputs.
    format::EncryptionMaterials m;
    m.suite = static_cast<Suite>(v["suite_id"].get<int>());
    m.frame_size = v["frame_size"];
    m.message_id = Unhex(v["message_id"]);
    m.key = {v["environment"], v["key_name"], v["key_version"]};
    m.context = Context(v["context"]);
    m.data_key = &data_key;
    for (const Json& w : v["wrapped_keys"]) {
      m.data_keys.push_back({w["provider_id"], w["provider_info"],
                             Unhex(w["ciphertext"])});
    }
    std::string again;
    StringInputStream in(plaintext);
    StringOutputStream out(&again);
    KW_ASSERT_OK(format::EncryptWithMaterials(m, in, out));
    EXPECT_EQ(absl::BytesToHexString(again), v["message"].get<std::string>());
    auto bytes_form = format::EncryptBytesWithMaterials(m, plaintext);
    ASSERT_TRUE(bytes_form.ok());
    EXPECT_EQ(*bytes_form, again) << "bytes and stream encoders differ";
    auto info = InspectMessage(message);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->header_bytes, v["header_length"].get<uint64_t>());
    EXPECT_EQ(info->frames, v["frames"].get<uint64_t>());
    ++*checked;
  }
}

TEST(FormatVectorsTest, Aes256Gcm) {
  int checked = 0;
  CheckPositiveFile("aes-256-gcm.json", &checked);
  EXPECT_EQ(checked, 6);
}

TEST(FormatVectorsTest, ChaCha20Poly1305) {
  int checked = 0;
  CheckPositiveFile("chacha20-poly1305.json", &checked);
  EXPECT_EQ(checked, 5);
}

TEST(FormatVectorsTest, Aes256GcmEcdsaP384) {
  int checked = 0;
  CheckPositiveFile("aes-256-gcm-ecdsa-p384.json", &checked);
  EXPECT_EQ(checked, 4);
}

void CheckNegativeFile(const std::string& name, int* checked);

TEST(FormatVectorsTest, NegativeSignedVectorsFailWithTheirError) {
  int checked = 0;
  CheckNegativeFile("negative-signed.json", &checked);
  EXPECT_EQ(checked, 9);
}

TEST(FormatVectorsTest, NegativeVectorsFailWithTheirError) {
  int checked = 0;
  CheckNegativeFile("negative.json", &checked);
  EXPECT_EQ(checked, 36);
}

void CheckNegativeFile(const std::string& name, int* checked_out) {
  auto keyrings = Keyrings(Load("aes-256-gcm.json")["raw_keys"]);
  Json file = Load(name);
  int checked = 0;
  for (const Json& v : file["vectors"]) {
    SCOPED_TRACE(v["name"].get<std::string>());
    testing::Keyrings use;
    for (const Json& k : v["raw_keys"]) use.push_back(keyrings.at(k).get());
    DecryptOptions opts;
    opts.expected_context = Context(v["expected_context"]);
    opts.expected_environment = v["expected_environment"].get<std::string>();
    auto result = DecryptMessage(Unhex(v["message"]), use, opts);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(ErrorCodeName(GetErrorCode(result.status())),
              v["expected_error"].get<std::string>())
        << result.status();
    ++checked;
  }
  *checked_out = checked;
}

// docs/format.md §12 walks through vector "single-frame": every value it
// shows, in full or as prefix…suffix, must be the vector's, so the example
// cannot go stale again.
TEST(FormatVectorsTest, TheWorkedExampleInTheSpecIsTheVector) {
  std::ifstream in("docs/format.md");
  ASSERT_TRUE(in.good()) << "run from the repository root";
  const std::string doc((std::istreambuf_iterator<char>(in)), {});
  const size_t start = doc.find("## 12. Worked example");
  const size_t end = doc.find("## 13.", start);
  ASSERT_NE(start, std::string::npos);
  const std::string section = doc.substr(start, end - start);
  Json vector;
  const Json file = Load("aes-256-gcm.json");
  for (const Json& v : file["vectors"]) {
    if (v["name"] == "single-frame") vector = v;
  }
  ASSERT_FALSE(vector.is_null());
  auto value = [&](const char* field) { return vector[field].get<std::string>(); };
  // Labelled lines: "<label>  <full hex>".
  const std::pair<const char*, const char*> full[] = {{"data key", "data_key"},
                                                       {"message id", "message_id"},
                                                       {"message key", "message_key"},
                                                       {"commitment", "commitment"},
                                                       {"header tag", "header_tag"}};
  int seen = 0;
  for (const auto& [label, field] : full) {
    const std::regex line(std::string("\\n") + label + " +([0-9a-f]+)");
    std::smatch match;
    ASSERT_TRUE(std::regex_search(section, match, line)) << label;
    EXPECT_EQ(match[1].str(), value(field)) << label;
    ++seen;
  }
  std::smatch size;
  ASSERT_TRUE(std::regex_search(section, size, std::regex("\\(header: ([0-9]+) bytes\\)")));
  EXPECT_EQ(std::stoul(size[1].str()), vector["header_length"].get<size_t>());
  // Abbreviated lines in the byte-by-byte dump: "<prefix>…<suffix>  <what>".
  const std::pair<const char*, const char*> abbreviated[] = {
      {"message id", "message_id"}, {"key commitment", "commitment"}, {"header tag", "header_tag"}};
  for (const auto& [what, field] : abbreviated) {
    const std::regex line(std::string("\\n([0-9a-f]+)…([0-9a-f]+) +") + what);
    std::smatch match;
    ASSERT_TRUE(std::regex_search(section, match, line)) << what;
    const std::string v = value(field);
    EXPECT_EQ(v.substr(0, match[1].length()), match[1].str()) << what;
    EXPECT_EQ(v.substr(v.size() - match[2].length()), match[2].str()) << what;
    ++seen;
  }
  EXPECT_EQ(seen, 8);
}

}  // namespace
}  // namespace keyward
