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

// The searchable example schema/fields.schema.json is checked against
// (tests/schema/check_json_schema.py) is one keyward accepts, read as
// written.
TEST(FieldSchemaTest, TheJsonSchemaSearchableExampleParses) {
  auto schema = FieldSchema::Load("tests/schema/searchable.yaml");
  ASSERT_TRUE(schema.ok()) << schema.status();
  auto table = (*schema)->Table("customers");
  ASSERT_TRUE(table.ok());
  const TableSchema& t = **table;
  EXPECT_EQ(t.fields.at("customer_no").treatment, Treatment::kDeterministic);
  EXPECT_EQ(t.fields.at("customer_no").cardinality, 1000000u);
  EXPECT_EQ(t.fields.at("birth_year").cardinality, 120u);
  EXPECT_EQ(t.fields.at("country").cardinality, 200u);
  std::vector<std::string> names;
  for (const BlindIndex& index : t.indexes) names.push_back(index.name);
  EXPECT_THAT(names, ::testing::UnorderedElementsAre("email_idx", "email_domain", "name_nfkc",
                                                     "phone_last4", "postcode_prefix",
                                                     "name_year"));
  auto transforms = [&](absl::string_view name) {
    std::vector<std::string> out;
    for (const IndexTransform& step : t.Index(name)->transforms) {
      out.push_back(IndexTransformName(step));
    }
    return out;
  };
  ASSERT_NE(t.Index("email_idx"), nullptr);
  EXPECT_EQ(t.Index("email_idx")->bits, 0);  // auto
  EXPECT_THAT(transforms("email_idx"), ::testing::ElementsAre("trim", "lowercase"));
  EXPECT_EQ(t.Index("email_domain")->bits, 8);
  EXPECT_THAT(transforms("email_domain"), ::testing::ElementsAre("lowercase", "last:11"));
  EXPECT_THAT(transforms("name_nfkc"), ::testing::ElementsAre("normalize:NFKC"));
  EXPECT_THAT(transforms("phone_last4"), ::testing::ElementsAre("digits", "last:4"));
  EXPECT_EQ(t.Index("postcode_prefix")->bits, 0);  // bits left out: auto
  EXPECT_THAT(transforms("postcode_prefix"), ::testing::ElementsAre("first:3"));
  const BlindIndex* compound = t.Index("name_year");
  ASSERT_NE(compound, nullptr);
  EXPECT_TRUE(compound->compound());
  EXPECT_THAT(compound->columns, ::testing::ElementsAre("last_name", "birth_year"));
  EXPECT_THAT(transforms("name_year"), ::testing::ElementsAre("trim"));
  EXPECT_EQ(compound->bits, 12);
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
                                        "      ssn: { class: pii, treatment: determinstic }\n"  // 14
                                        "      id: { class: pii, treatment: randomized }\n"  // 15
                                        "      name: { class: public, treatment: randomized }\n"  // 16
                                        "      bio: { class: internal, treatment: rot13 }\n");  // 17
  const std::string p = Problems(yaml);
  EXPECT_THAT(p, HasSubstr("12: unknown key \"tretment\""));
  EXPECT_THAT(p, HasSubstr("12: field users.email: treatment must be"));
  EXPECT_THAT(p, HasSubstr("13: field users.phone: class secret is not declared"));
  EXPECT_THAT(p, HasSubstr("14: field users.ssn: treatment must be plaintext, randomized or "
                           "deterministic, not determinstic"));
  EXPECT_THAT(p, HasSubstr("15: field users.id: the id column must stay plaintext"));
  EXPECT_THAT(p, HasSubstr("16: field users.name is encrypted but its class public says encrypt: never"));
  EXPECT_THAT(p, HasSubstr("17: field users.bio: treatment must be plaintext, randomized or "
                           "deterministic, not rot13"));
}

std::string Warnings(absl::string_view yaml) {
  std::string out;
  for (const auto& p : FieldSchema::Check(yaml)) {
    if (p.warning) out += absl::StrCat(p.line, ": ", p.message, "\n");
  }
  return out;
}

TEST(FieldSchemaTest, BlindIndexesAndDeterministicFieldsParse) {
  const std::string yaml = absl::StrCat(kHead,
      "      email:\n"                                                              // 12
      "        class: pii\n"
      "        treatment: randomized\n"
      "        indexes:\n"
      "          - { name: email_idx, transform: [trim, lowercase], bits: auto }\n"  // 16
      "          - { name: email_first, transform: \"first:1\", bits: 4 }\n"       // 17
      "      ssn: { class: pii, treatment: deterministic }\n"                       // 18
      "      last_name: { class: pii, treatment: randomized }\n"
      "      birth_year: { class: pii, treatment: randomized, cardinality: 120 }\n"
      "    indexes:\n"
      "      - { name: name_year, fields: [last_name, birth_year], transform: "
      "[normalize:NFKC, lowercase], bits: 12 }\n");                                 // 22
  auto schema = FieldSchema::Parse(yaml);
  ASSERT_TRUE(schema.ok()) << schema.status();
  const TableSchema& users = *(*schema)->Table("users").value();
  EXPECT_EQ(users.fields.at("ssn").treatment, Treatment::kDeterministic);
  EXPECT_EQ(users.fields.at("birth_year").cardinality, 120u);
  ASSERT_EQ(users.indexes.size(), 3u);
  const BlindIndex* email = users.Index("email_idx");
  ASSERT_NE(email, nullptr);
  EXPECT_EQ(email->bits, 0);
  EXPECT_EQ(email->line, 16);
  ASSERT_EQ(email->transforms.size(), 2u);
  EXPECT_EQ(IndexTransformName(email->transforms[0]), "trim");
  EXPECT_EQ(IndexTransformName(email->transforms[1]), "lowercase");
  EXPECT_EQ(IndexTransformName(users.Index("email_first")->transforms[0]), "first:1");
  const BlindIndex* compound = users.Index("name_year");
  ASSERT_NE(compound, nullptr);
  EXPECT_TRUE(compound->compound());
  EXPECT_THAT(compound->columns, ::testing::ElementsAre("last_name", "birth_year"));
  EXPECT_EQ(compound->bits, 12);
  EXPECT_EQ(users.IndexesOf("birth_year").size(), 1u);
  EXPECT_EQ(users.IndexesOf("email").size(), 2u);
  EXPECT_TRUE(users.IndexesOf("ssn").empty());
  EXPECT_EQ(Warnings(yaml), "");
}

TEST(FieldSchemaTest, IndexMistakesAreListedWithTheirLines) {
  const std::string yaml = absl::StrCat(kHead,
      "      email:\n"                                                         // 12
      "        class: pii\n"
      "        treatment: randomized\n"
      "        indexes:\n"
      "          - { name: email_idx, transform: [upper], bits: 40 }\n"        // 16
      "          - { name: email_idx, transform: \"last:0\" }\n"             // 17
      "          - { name: \"bad-name\" }\n"                                 // 18
      "      notes: { class: internal, treatment: plaintext, indexes: [{name: n}] }\n"  // 19
      "      year: { class: pii, treatment: randomized, cardinality: zero }\n"          // 20
      "    indexes:\n"
      "      - { name: solo, fields: [email] }\n"                             // 22
      "      - { name: mix, fields: [email, notes, ghost] }\n"                // 23
      "      - { name: email, fields: [email, year] }\n");                    // 24
  const std::string p = Problems(yaml);
  EXPECT_THAT(p, HasSubstr("16: field users.email: index email_idx: unknown transform \"upper\""));
  EXPECT_THAT(p, HasSubstr("16: field users.email: index email_idx: bits must be auto or 1..32, "
                           "not 40"));
  EXPECT_THAT(p, HasSubstr("17: field users.email: index email_idx: last:0: the count after the "
                           "colon must be 1..1024"));
  EXPECT_THAT(p, HasSubstr("17: table users: two indexes are named email_idx"));
  EXPECT_THAT(p, HasSubstr("18: field users.email: an index needs a name of 1 to 48 letters"));
  EXPECT_THAT(p, HasSubstr("19: field users.notes is plaintext: query it directly"));
  EXPECT_THAT(p, HasSubstr("20: field users.year: cardinality is the expected number"));
  EXPECT_THAT(p, HasSubstr("22: table users: index solo: a table-level (compound) index lists two "
                           "or more fields"));
  EXPECT_THAT(p, HasSubstr("23: table users: index mix: notes is plaintext"));
  EXPECT_THAT(p, HasSubstr("23: table users: index mix: ghost is not a field of table users"));
  EXPECT_THAT(p, HasSubstr("24: table users: index email has the name of a column"));
}

TEST(FieldSchemaTest, LowCardinalityFieldsWarnButStayValid) {
  const std::string yaml = absl::StrCat(kHead,
      "      active: { class: pii, treatment: deterministic, cardinality: 2 }\n"  // 12
      "      country:\n"                                                          // 13
      "        class: pii\n"
      "        treatment: randomized\n"
      "        cardinality: 200\n"
      "        indexes: [{ name: country_idx, bits: 8 }]\n"                     // 17
      "      plan:\n"                                                             // 18
      "        class: pii\n"
      "        treatment: randomized\n"
      "        cardinality: 200\n"
      "        indexes: [{ name: plan_idx, bits: 2 }]\n");                      // 22
  EXPECT_TRUE(FieldSchema::Parse(yaml).ok());
  const std::string w = Warnings(yaml);
  EXPECT_THAT(w, HasSubstr("12: field users.active: deterministic encryption of a field with "
                           "about 2 distinct values shows how often each value occurs"));
  EXPECT_THAT(w, HasSubstr("17: table users: index country_idx over country (about 200 distinct "
                           "values) is wide enough to tell the values apart"));
  // 2 bits over 200 values: about 50 values per index value, no warning.
  EXPECT_THAT(w, ::testing::Not(HasSubstr("plan_idx")));
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
