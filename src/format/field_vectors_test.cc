// Reads every frozen vector of tests/vectors/fields_v1/fields.json
// (docs/format.md §15.5): a valid vector's stored value must decrypt to
// exactly its type and payload, an invalid one must fail with exactly its
// expected error.  The vectors were sealed once with random nonces; this
// test only decrypts them.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/escaping.h"
#include "crypto/aead.h"
#include "format/field_value.h"
#include "gtest/gtest.h"
#include "keyward/errors.h"
#include "nlohmann/json.hpp"

namespace keyward::format {
namespace {

using Json = nlohmann::json;

constexpr char kPath[] = "tests/vectors/fields_v1/fields.json";

std::string Unhex(const Json& j) { return absl::HexStringToBytes(j.get<std::string>()); }

const char* TypeName(FieldType t) {
  switch (t) {
    case FieldType::kInteger: return "integer";
    case FieldType::kReal: return "real";
    case FieldType::kText: return "text";
    case FieldType::kBytes: return "bytes";
    case FieldType::kJson: return "json";
  }
  return "?";
}

// Reads the stored value the way a reader does: text form, binary form,
// then decryption at the vector's location.
absl::StatusOr<FieldPlaintext> Read(const Json& v, uint32_t* key_ref, std::string* binary_out) {
  auto binary = FieldFromText(v["stored"].get<std::string>());
  if (!binary.ok()) return binary.status();
  *binary_out = *binary;
  auto envelope = ParseField(*binary);
  if (!envelope.ok()) return envelope.status();
  *key_ref = envelope->key_ref;
  auto aead = crypto::internal::NewNonceAead(crypto::AeadAlgorithm::kAes256Gcm,
                              SecretData::CopyFrom(Unhex(v["data_key"])));
  if (!aead.ok()) return aead.status();
  auto part = [&](const char* name) { return v[name].get<std::string>(); };
  const FieldLocation where{part("dataset"), part("table"), part("column"), part("tenant"),
                            part("row_id")};
  return OpenField(**aead, *envelope, where);
}

TEST(FieldVectorsTest, EveryFrozenVectorReadsAsRecorded) {
  std::ifstream in(kPath);
  ASSERT_TRUE(in) << "missing " << kPath << " (tests run from the repository root)";
  std::stringstream ss;
  ss << in.rdbuf();
  const Json file = Json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(file.is_object()) << kPath << " is not a JSON object";
  EXPECT_EQ(file.value("format", ""), "keyward field value v1");
  ASSERT_TRUE(file.contains("vectors") && file["vectors"].is_array());
  ASSERT_FALSE(file["vectors"].empty()) << kPath << " has no vectors";

  int valid = 0, invalid = 0;
  for (const Json& v : file["vectors"]) {
    SCOPED_TRACE(v["name"].get<std::string>());
    uint32_t key_ref = 0;
    std::string binary;
    auto plain = Read(v, &key_ref, &binary);
    if (!v.contains("expected_error")) {
      if (!plain.ok()) {
        ADD_FAILURE() << "must decrypt: " << plain.status();
        continue;
      }
      EXPECT_EQ(TypeName(plain->type), v["type"].get<std::string>());
      EXPECT_EQ(absl::BytesToHexString(plain->payload.AsStringView()),
                v["payload"].get<std::string>());
      EXPECT_EQ(key_ref, v["key_ref"].get<uint32_t>());
      EXPECT_EQ(binary.size(), plain->payload.size() + kFieldOverhead);
      // The recorded text is the writer's (canonical) form of the value.
      EXPECT_EQ(FieldToText(binary), v["stored"].get<std::string>());
      ++valid;
    } else {
      const std::string expected = v["expected_error"];
      EXPECT_NE(ErrorCodeFromName(expected), ErrorCode::kNone) << "unknown error " << expected;
      if (plain.ok()) {
        ADD_FAILURE() << "decrypted, but must fail with " << expected;
        continue;
      }
      EXPECT_EQ(std::string(ErrorCodeName(GetErrorCode(plain.status()))), expected)
          << plain.status();
      ++invalid;
    }
  }
  // The file is frozen: the counts never change.
  EXPECT_EQ(valid, 20);
  EXPECT_EQ(invalid, 28);
  if (!HasFailure()) {
    std::printf("field vectors: %d valid, %d invalid, all passed\n", valid, invalid);
  }
}

}  // namespace
}  // namespace keyward::format
