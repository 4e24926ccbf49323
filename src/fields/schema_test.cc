// Classification schemas: the example parses; every kind of mistake is
// reported with its line.
#include "keyward/field_schema.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testing/subprocess.h"

namespace keyward {
namespace {

using ::testing::HasSubstr;

std::string Problems(absl::string_view yaml) {
  std::string out;
  for (const auto& p : FieldSchema::Check(yaml)) out += absl::StrCat(p.line, ": ", p.message, "\n");
  return out;
}

constexpr char kHead[] = R"(version: 1
dataset: shop
key: shop
classes:
  pii: { encrypt: required, readers: [app] }
  internal: { encrypt: optional }
  public: { encrypt: never }
tables:
  users:
    id_column: id
    fields:
)";

TEST(FieldSchemaTest, TheShippedExampleIsValid) {
  auto schema = FieldSchema::Load("examples/fields/customers.yaml");
  ASSERT_TRUE(schema.ok()) << schema.status();
  EXPECT_EQ((*schema)->dataset(), "customers");
  EXPECT_EQ((*schema)->key(), "customers");
  EXPECT_EQ((*schema)->tenant_column(), "tenant_id");
  auto table = (*schema)->Table("customers");
  ASSERT_TRUE(table.ok());
  EXPECT_EQ((*table)->id_column, "id");
  std::vector<std::string> encrypted;
  for (const FieldRule* f : (*table)->EncryptedFields()) encrypted.push_back(f->column);
  EXPECT_THAT(encrypted, ::testing::ElementsAre("card_number", "email", "ssn"));
  EXPECT_EQ((*table)->fields.at("card_number").class_name, "pci");
  EXPECT_FALSE((*table)->fields.at("notes").encrypted());
  EXPECT_FALSE((*schema)->Table("orders").ok());
  // The policy rules name each class's readers, key and conditions.
  const std::string rules = (*schema)->PolicyRules();
  EXPECT_THAT(rules, HasSubstr("fields-customers-pci"));
  EXPECT_THAT(rules, HasSubstr("{key: \"keyward:class\", value: \"pii\"}"));
  EXPECT_THAT(rules, ::testing::Not(HasSubstr("internal")));
}

TEST(FieldSchemaTest, ARequiredClassLeftPlaintextIsAnErrorOnItsLine) {
  const std::string yaml = absl::StrCat(kHead, "      email: { class: pii, treatment: plaintext }\n");
  EXPECT_THAT(Problems(yaml), HasSubstr("12: field users.email is left plaintext but its class "
                                        "pii requires encryption"));
  auto parsed = FieldSchema::Parse(yaml, "s.yaml");
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(parsed.status().message(), HasSubstr("s.yaml:12:"));
}

TEST(FieldSchemaTest, EveryMistakeIsListedWithItsLine) {
  const std::string yaml = absl::StrCat(kHead,
                                        "      email: { class: pii, tretment: randomized }\n"   // 12
                                        "      phone: { class: secret, treatment: randomized }\n"  // 13
                                        "      ssn: { class: pii, treatment: deterministic }\n"  // 14
                                        "      id: { class: pii, treatment: randomized }\n"  // 15
                                        "      name: { class: public, treatment: randomized }\n"  // 16
                                        "      bio: { class: internal, treatment: rot13 }\n");  // 17
  const std::string p = Problems(yaml);
  EXPECT_THAT(p, HasSubstr("12: unknown key \"tretment\""));
  EXPECT_THAT(p, HasSubstr("12: field users.email: treatment must be"));
  EXPECT_THAT(p, HasSubstr("13: field users.phone: class secret is not declared"));
  EXPECT_THAT(p, HasSubstr("14: field users.ssn: treatment deterministic is reserved"));
  EXPECT_THAT(p, HasSubstr("15: field users.id: the id column must stay plaintext"));
  EXPECT_THAT(p, HasSubstr("16: field users.name is encrypted but its class public says encrypt: never"));
  EXPECT_THAT(p, HasSubstr("17: field users.bio: treatment must be plaintext, randomized or "
                           "deterministic, not rot13"));
}

TEST(FieldSchemaTest, FileLevelMistakes) {
  EXPECT_THAT(Problems("version: 1\ndataset: [a\n"), HasSubstr("not valid YAML"));
  EXPECT_THAT(Problems("- a\n- b\n"), HasSubstr("a schema is a YAML mapping"));
  EXPECT_THAT(Problems("dataset: d\nkey: k\nclasses: {}\ntables: {}\n"),
              HasSubstr("version is missing"));
  EXPECT_THAT(Problems("version: 2\ndataset: d\nkey: k\nclasses: {}\ntables: {t: {id_column: id, "
                       "fields: {}}}\n"),
              HasSubstr("1: version 2 is not supported"));
  EXPECT_THAT(Problems("version: 1\ndataset: \"a b\"\nkey: k\nclasses: {}\ntables: {}\n"),
              HasSubstr("2: dataset must be 1 to 63 letters"));
  EXPECT_THAT(Problems("version: 1\ndataset: d\nkey: k\nclasses: {}\ntables: {}\n"),
              HasSubstr("tables is missing or empty"));
  EXPECT_THAT(Problems("version: 1\ndataset: d\nkey: k\ntenant_column: t\nextra: 1\nclasses:\n"
                       "  pii: { encrypt: always }\ntables: {u: {id_column: id, fields: {t: "
                       "{class: pii, treatment: randomized}}}}\n"),
              ::testing::AllOf(HasSubstr("5: unknown key \"extra\""),
                               HasSubstr("7: class pii: encrypt must be required, optional or "
                                         "never, not always"),
                               HasSubstr("the tenant column must stay plaintext")));
}

TEST(FieldSchemaTest, AnEncryptedClassNeedsReaders) {
  const std::string yaml = R"(version: 1
dataset: d
key: k
classes:
  pci: { encrypt: required }
tables:
  t: { id_column: id, fields: { card: { class: pci, treatment: randomized } } }
)";
  EXPECT_THAT(Problems(yaml), HasSubstr("5: class pci has encrypted fields but no readers"));
}

}  // namespace
}  // namespace keyward
