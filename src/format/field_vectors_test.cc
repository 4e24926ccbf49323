// Reads every frozen vector of tests/vectors/fields_v1/fields.json
// (docs/format.md §15.5): a valid vector's stored value must decrypt to
// exactly its type and payload, an invalid one must fail with exactly its
// expected error.  Randomized values (0x11) were sealed once with random
// nonces; this test only decrypts them.  Deterministic values (0x12,
// §15.6) have no nonce: the test also re-derives their AES-256-SIV key,
// re-seals them, and checks which ones are (and are not) equal bytes.
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <tuple>

#include "absl/strings/escaping.h"
#include "crypto/aead.h"
#include "crypto/deterministic_aead.h"
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

FieldLocation LocationOf(const Json& v) {
  auto part = [&](const char* name) { return v[name].get<std::string>(); };
  return FieldLocation{part("dataset"), part("table"), part("column"), part("tenant"),
                       part("row_id")};
}

// A deterministic vector's AES-256-SIV, keyed as §15.6 derives it.
absl::StatusOr<std::unique_ptr<crypto::DeterministicAead>> DaeadOf(const Json& v) {
  auto key = DeterministicFieldKey(SecretData::CopyFrom(Unhex(v["data_key"])), LocationOf(v));
  if (!key.ok()) return key.status();
  return crypto::DeterministicAead::New(*key);
}

// Reads the stored value the way a reader does: text form, binary form,
// then decryption at the vector's location with the treatment the first
// byte names.
absl::StatusOr<FieldPlaintext> Read(const Json& v, uint32_t* key_ref, std::string* binary_out,
                                    bool* deterministic) {
  auto binary = FieldFromText(v["stored"].get<std::string>());
  if (!binary.ok()) return binary.status();
  *binary_out = *binary;
  auto envelope = ParseField(*binary);
  if (!envelope.ok()) return envelope.status();
  *key_ref = envelope->key_ref;
  *deterministic = envelope->deterministic();
  const FieldLocation where = LocationOf(v);
  if (envelope->deterministic()) {
    auto daead = DaeadOf(v);
    if (!daead.ok()) return daead.status();
    std::string plain;
    auto type = OpenDeterministicFieldInto(**daead, *envelope, where, &plain);
    if (!type.ok()) return type.status();
    FieldPlaintext out;
    out.type = *type;
    out.payload = SecretData::CopyFrom(plain);
    return out;
  }
  auto aead = crypto::internal::NewNonceAead(crypto::AeadAlgorithm::kAes256Gcm,
                              SecretData::CopyFrom(Unhex(v["data_key"])));
  if (!aead.ok()) return aead.status();
  return OpenField(**aead, *envelope, where);
}

FieldType TypeOf(const std::string& name) {
  for (FieldType t : {FieldType::kInteger, FieldType::kReal, FieldType::kText, FieldType::kBytes,
                      FieldType::kJson}) {
    if (name == TypeName(t)) return t;
  }
  ADD_FAILURE() << "unknown type " << name;
  return FieldType::kText;
}

// What §15.6 says makes two deterministic values equal bytes: everything
// but the row id.
using EqualityKey = std::tuple<std::string, std::string, std::string, std::string, std::string,
                               uint32_t, std::string, std::string>;
EqualityKey EqualityKeyOf(const Json& v) {
  return {v["data_key"], v["dataset"], v["table"], v["column"], v["tenant"],
          v["key_ref"].get<uint32_t>(), v["type"], v["payload"]};
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

  int valid = 0, invalid = 0, valid_deterministic = 0, invalid_deterministic = 0;
  // Deterministic valid vectors by what makes them equal: stored values.
  std::map<EqualityKey, std::string> stored_of;
  std::map<std::string, std::string> name_of_stored;
  int equal_pairs = 0;
  for (const Json& v : file["vectors"]) {
    SCOPED_TRACE(v["name"].get<std::string>());
    uint32_t key_ref = 0;
    std::string binary;
    bool deterministic = false;
    auto plain = Read(v, &key_ref, &binary, &deterministic);
    if (!v.contains("expected_error")) {
      if (!plain.ok()) {
        ADD_FAILURE() << "must decrypt: " << plain.status();
        continue;
      }
      EXPECT_EQ(TypeName(plain->type), v["type"].get<std::string>());
      EXPECT_EQ(absl::BytesToHexString(plain->payload.AsStringView()),
                v["payload"].get<std::string>());
      EXPECT_EQ(key_ref, v["key_ref"].get<uint32_t>());
      EXPECT_EQ(binary.size(), plain->payload.size() + (deterministic
                                                            ? kFieldDeterministicOverhead
                                                            : kFieldOverhead));
      // The recorded text is the writer's (canonical) form of the value.
      EXPECT_EQ(FieldToText(binary), v["stored"].get<std::string>());
      ++valid;
      if (deterministic) {
        ++valid_deterministic;
        // The recorded SIV key is §15.6's derivation...
        auto key = DeterministicFieldKey(SecretData::CopyFrom(Unhex(v["data_key"])),
                                         LocationOf(v));
        ASSERT_TRUE(key.ok()) << key.status();
        EXPECT_EQ(absl::BytesToHexString(key->AsStringView()), v["siv_key"].get<std::string>());
        // ...and the writer, at any row, writes exactly the stored bytes.
        auto daead = DaeadOf(v);
        ASSERT_TRUE(daead.ok()) << daead.status();
        for (const char* row : {"", "1", "somewhere else"}) {
          FieldLocation where = LocationOf(v);
          where.row_id = row;
          std::string resealed;
          ASSERT_TRUE(SealDeterministicFieldInto(**daead, key_ref, where,
                                                 TypeOf(v["type"]), Unhex(v["payload"]),
                                                 &resealed)
                          .ok());
          EXPECT_EQ(FieldToText(resealed), v["stored"].get<std::string>()) << "row " << row;
        }
        // Equal bytes exactly when everything but the row id is equal.
        const std::string stored = v["stored"];
        auto [it, fresh] = stored_of.emplace(EqualityKeyOf(v), stored);
        if (!fresh) {
          EXPECT_EQ(it->second, stored) << "the same value, key and column: equal bytes";
          ++equal_pairs;
        } else {
          auto [other, new_bytes] = name_of_stored.emplace(stored, v["name"]);
          EXPECT_TRUE(new_bytes) << "the same bytes as " << other->second
                                 << ", which differs in more than the row id";
        }
      } else {
        EXPECT_FALSE(v.contains("siv_key"));
      }
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
      if (deterministic) ++invalid_deterministic;
    }
  }
  // The file is frozen: the counts never change (the deterministic
  // vectors were appended once, docs/format.md §15.5).
  EXPECT_EQ(valid, 40);
  EXPECT_EQ(invalid, 51);
  EXPECT_EQ(valid_deterministic, 20);
  // The 23 invalid deterministic vectors but the three ParseField refuses
  // (two truncated, first byte 0x13) and the one relabelled 0x11 (read as
  // randomized), plus the randomized value relabelled 0x12.
  EXPECT_EQ(invalid_deterministic, 23 - 4 + 1);
  EXPECT_EQ(equal_pairs, 2);  // read at rows 42 and 43
  if (!HasFailure()) {
    std::printf("field vectors: %d valid (%d deterministic), %d invalid (%d read as "
                "deterministic), %d equal deterministic pairs, all passed\n",
                valid, valid_deterministic, invalid, invalid_deterministic, equal_pairs);
  }
}

}  // namespace
}  // namespace keyward::format
