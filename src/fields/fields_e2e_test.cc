// Field-level encryption end to end, on SQLite and on PostgreSQL: typed
// round trips, values copied elsewhere refused, per-class access enforced
// by keywardd, tenant erasure, and table migration that survives kill -9.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>

#include "fields/fields_e2e_fixture.h"
#include "absl/strings/match.h"
#include "keyward/errors.h"
#include "nlohmann/json.hpp"

namespace keyward {
namespace {

using ::testing::HasSubstr;

TEST_P(FieldsE2eTest, ValuesOfEveryTypeRoundTripAndNullStaysNull) {
  auto enc = Encryptor(server_->app_config());
  ASSERT_NE(enc, nullptr);
  const FieldEncryptor::Location where{"customers", "email", "7", "acme"};
  const FieldValue values[] = {std::string(""),
                               std::string("alice@example.com"),
                               int64_t{-9223372036854775807LL - 1},
                               int64_t{42},
                               3.141592653589793,
                               FieldBytes{std::string("\0\xff\x01", 3)},
                               FieldJson{R"({"a": [1, 2.5, "x"]})"},
                               std::string(100000, 'x')};
  for (const FieldValue& v : values) {
    KW_ASSERT_OK_AND_ASSIGN(FieldValue stored, enc->EncryptValue(where, v));
    ASSERT_TRUE(std::holds_alternative<std::string>(stored));
    EXPECT_TRUE(absl::StartsWith(std::get<std::string>(stored), "kw1."));
    KW_ASSERT_OK_AND_ASSIGN(FieldValue back, enc->DecryptValue(where, stored));
    EXPECT_EQ(back, v);
  }
  KW_ASSERT_OK_AND_ASSIGN(FieldValue null, enc->EncryptValue(where, std::monostate()));
  EXPECT_TRUE(std::holds_alternative<std::monostate>(null));
  // A plaintext column passes through; a plaintext value in an encrypted
  // column is reported, not returned.
  KW_ASSERT_OK_AND_ASSIGN(FieldValue notes,
                          enc->EncryptValue({"customers", "notes", "7", "acme"}, std::string("n")));
  EXPECT_EQ(notes, FieldValue(std::string("n")));
  auto plain = enc->DecryptValue(where, std::string("alice@example.com"));
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(GetErrorCode(plain.status()), ErrorCode::kNotAKeywardMessage);
  // Binary encoding for BLOB/BYTEA columns.
  auto binary = Encryptor(server_->app_config(), {FieldEncryptor::Encoding::kBytes});
  KW_ASSERT_OK_AND_ASSIGN(FieldValue b, binary->EncryptValue(where, std::string("bob")));
  ASSERT_TRUE(std::holds_alternative<FieldBytes>(b));
  EXPECT_EQ(std::get<FieldBytes>(b).bytes.size(), 3u + 34u);
  KW_ASSERT_OK_AND_ASSIGN(FieldValue bb, enc->DecryptValue(where, b));
  EXPECT_EQ(bb, FieldValue(std::string("bob")));

  // Rows through the database and back, and JSON documents.
  const Customer c = Sample(1, "acme");
  KW_ASSERT_OK_AND_ASSIGN(FieldRow encrypted, enc->EncryptRow("customers", RowOf(c)));
  EXPECT_EQ(encrypted["notes"], FieldValue(c.notes));
  EXPECT_NE(encrypted["email"], FieldValue(c.email));
  KW_ASSERT_OK(db_->Execute("INSERT INTO customers VALUES ($1, $2, $3, $4, $5, $6)",
                            {c.id, c.tenant, std::get<std::string>(encrypted["email"]),
                             std::get<std::string>(encrypted["card_number"]),
                             appdb::Value(), c.notes})
                   .status());
  KW_ASSERT_OK_AND_ASSIGN(DecryptedRow d, enc->DecryptRow("customers", StoredRow(1)));
  EXPECT_EQ(d.row["email"], FieldValue(c.email));
  EXPECT_EQ(d.row["card_number"], FieldValue(c.card));
  EXPECT_TRUE(d.row.find("ssn") == d.row.end() ||
              std::holds_alternative<std::monostate>(d.row["ssn"]));
  KW_ASSERT_OK_AND_ASSIGN(
      std::string json,
      enc->EncryptJson("customers", R"({"id": 5, "tenant_id": "acme", "email": "e@x", "ssn": null})"));
  EXPECT_THAT(json, HasSubstr("\"email\":\"kw1."));
  EXPECT_THAT(json, HasSubstr("\"ssn\":null"));
  KW_ASSERT_OK_AND_ASSIGN(std::string plain_json, enc->DecryptJson("customers", json));
  EXPECT_EQ(plain_json, R"({"id":5,"tenant_id":"acme","email":"e@x","ssn":null})");
  EXPECT_FALSE(enc->EncryptJson("customers", "[1]").ok());
  // A row without its tenant cannot be encrypted.
  FieldRow no_tenant = RowOf(c);
  no_tenant.erase("tenant_id");
  EXPECT_FALSE(enc->EncryptRow("customers", no_tenant).ok());
}

TEST_P(FieldsE2eTest, AValueCopiedToAnotherRowColumnTenantOrDataSetDoesNotDecrypt) {
  auto enc = Encryptor(server_->app_config());
  ASSERT_NE(enc, nullptr);
  const FieldEncryptor::Location where{"customers", "email", "1", "acme"};
  KW_ASSERT_OK_AND_ASSIGN(FieldValue v, enc->EncryptValue(where, std::string("a@acme.example")));
  // Warm the other tenant's key so the failure is the value's, not a missing key.
  KW_ASSERT_OK(enc->EncryptValue({"customers", "email", "1", "globex"}, std::string("x")).status());
  struct Case {
    const char* what;
    FieldEncryptor::Location where;
  } cases[] = {
      {"another row", {"customers", "email", "2", "acme"}},
      {"another column of the same class", {"customers", "ssn", "1", "acme"}},
      {"another column of another class", {"customers", "card_number", "1", "acme"}},
      {"another tenant", {"customers", "email", "1", "globex"}},
  };
  for (const auto& c : cases) {
    auto out = enc->DecryptValue(c.where, v);
    ASSERT_FALSE(out.ok()) << c.what;
    EXPECT_EQ(GetErrorCode(out.status()), ErrorCode::kAuthenticationFailed)
        << c.what << ": " << out.status();
  }
  // Another data set (same key, same table and column names).
  std::string other = testing::ReadFileOrDie("examples/fields/customers.yaml");
  other.replace(other.find("dataset: customers"), 18, "dataset: customers2");
  auto schema2 = FieldSchema::Parse(other);
  ASSERT_TRUE(schema2.ok()) << schema2.status();
  auto o = LoadClientConfig(server_->app_config());
  auto data = DataClient::Connect(*o);
  ASSERT_TRUE(data.ok());
  auto enc2 = FieldEncryptor::Create(*schema2, *data, url_);
  ASSERT_TRUE(enc2.ok()) << enc2.status();
  auto out = (*enc2)->DecryptValue(where, v);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(GetErrorCode(out.status()), ErrorCode::kAuthenticationFailed) << out.status();
  // Still fine where it belongs.
  KW_ASSERT_OK_AND_ASSIGN(FieldValue back, enc->DecryptValue(where, v));
  EXPECT_EQ(back, FieldValue(std::string("a@acme.example")));
}

// Someone who can write the key table and mint data keys under another
// Keyward key cannot make the application encrypt under one of them.
TEST_P(FieldsE2eTest, AKeyTableRowWrappedUnderAnotherKeyIsRefused) {
  auto enc = Encryptor(server_->admin_config());
  ASSERT_NE(enc, nullptr);
  KW_ASSERT_OK(enc->EncryptValue({"customers", "email", "1", "acme"}, std::string("a")).status());
  ASSERT_EQ(server_->Cli({"key", "create", "attacker"}).exit_code, 0);
  auto o = LoadClientConfig(server_->admin_config());
  auto data = DataClient::Connect(*o);
  ASSERT_TRUE(data.ok());
  const EncryptionContext context{{"keyward:dataset", "customers"},
                                  {"keyward:class", "pii"},
                                  {"keyward:tenant", "acme"},
                                  {"keyward:field-key", "77"}};
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey minted, (*data)->GenerateDataKey("attacker", context));
  KW_ASSERT_OK(db_->Execute("INSERT INTO keyward_field_keys VALUES (77, 'customers', 'pii', 'acme', "
                            "99, $1, 1, '2026-12-02T00:00:00Z')",
                            {appdb::Blob{minted.encrypted.ciphertext}})
                   .status());
  auto fresh = Encryptor(server_->admin_config());
  auto v = fresh->EncryptValue({"customers", "email", "2", "acme"}, std::string("b"));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(GetErrorCode(v.status()), ErrorCode::kAuthenticationFailed) << v.status();
  EXPECT_THAT(std::string(v.status().message()), HasSubstr("is not a data key of key customers"));
}

// keywardd, not the client, decides who reads which class: a principal
// allowed `pii` but not `pci` gets the one data key and not the other.
TEST_P(FieldsE2eTest, APrincipalThatMayReadPiiIsRefusedPci) {
  auto admin_enc = Encryptor(server_->admin_config());
  ASSERT_NE(admin_enc, nullptr);
  const Customer c = Sample(3, "acme");
  KW_ASSERT_OK_AND_ASSIGN(FieldRow stored, admin_enc->EncryptRow("customers", RowOf(c)));
  KW_ASSERT_OK(db_->Execute("INSERT INTO customers VALUES ($1, $2, $3, $4, $5, $6)",
                            {c.id, c.tenant, std::get<std::string>(stored["email"]),
                             std::get<std::string>(stored["card_number"]),
                             std::get<std::string>(stored["ssn"]), c.notes})
                   .status());
  // The schema's rules with pci's readers emptied, plus the admin's.
  std::string yaml = testing::ReadFileOrDie("examples/fields/customers.yaml");
  const size_t pci = yaml.find("  pci:");
  yaml.replace(yaml.find("readers", pci), std::string("readers: [\"spiffe://keyward.dev/app\"]").size(),
               "readers: [\"spiffe://keyward.dev/nobody\"]");
  auto schema = FieldSchema::Parse(yaml);
  ASSERT_TRUE(schema.ok()) << schema.status();
  const std::string policy = absl::StrCat(
      "rules:\n  - name: dev-admin\n    principals: [\"spiffe://keyward.dev/admin\"]\n"
      "    keys: [\"*\"]\n    operations: [\"*\"]\n",
      (*schema)->PolicyRules());
  testing::WriteFileOrDie(server_->File("fields-policy.yaml"), policy);
  ASSERT_EQ(server_->Cli({"policy", "set", server_->File("fields-policy.yaml")}).exit_code, 0);

  auto app = Encryptor(server_->app_config());
  ASSERT_NE(app, nullptr);
  KW_ASSERT_OK_AND_ASSIGN(DecryptedRow d, app->DecryptRow("customers", StoredRow(3),
                                                          FieldEncryptor::Failure::kPartial));
  EXPECT_EQ(d.row["email"], FieldValue(c.email));
  EXPECT_EQ(d.row["ssn"], FieldValue(c.ssn));
  EXPECT_EQ(d.row.count("card_number"), 0u);
  ASSERT_EQ(d.failed.count("card_number"), 1u);
  EXPECT_EQ(GetErrorCode(d.failed["card_number"]), ErrorCode::kAccessDenied) << d.failed["card_number"];
  auto whole = app->DecryptRow("customers", StoredRow(3));
  ASSERT_FALSE(whole.ok());
  EXPECT_EQ(GetErrorCode(whole.status()), ErrorCode::kAccessDenied);
  // Nor can it write pci (writing needs the data key too).
  auto write = app->EncryptValue({"customers", "card_number", "9", "globex"}, std::string("4242"));
  EXPECT_EQ(GetErrorCode(write.status()), ErrorCode::kAccessDenied) << write.status();

  // The CLI reports the field it cannot read as an error for that field.
  testing::ProcessResult r = server_->Cli({"fields", "get", "--schema", "examples/fields/customers.yaml",
                                           "--db", url_, "--table", "customers", "--id", "3", "--json"},
                                          server_->app_config());
  EXPECT_NE(r.exit_code, 0);
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out << r.err;
  EXPECT_EQ(j["values"]["email"], c.email);
  EXPECT_TRUE(j["values"]["card_number"].is_null());
  EXPECT_EQ(j["errors"]["card_number"]["error"], "access-denied");
  // And the admin reads the whole row.
  auto all = CliJson({"fields", "get", "--schema", "examples/fields/customers.yaml", "--db", url_,
                      "--table", "customers", "--id", "3", "--json"});
  EXPECT_EQ(all["values"]["card_number"], c.card);
  EXPECT_FALSE(all.contains("errors"));
}

// `keyward schema check` and `schema policy` need no keywardd.
TEST(FieldsCliTest, SchemaCheckListsEveryProblemWithItsLineAndExitsThree) {
  testing::TempDir dir;
  std::string yaml = testing::ReadFileOrDie("examples/fields/customers.yaml");
  yaml.replace(yaml.find("ssn: { class: pii, treatment: randomized }"),
               std::string("ssn: { class: pii, treatment: randomized }").size(),
               "ssn: { class: pii, treatment: plaintext }");
  yaml.replace(yaml.find("notes: { class: internal, treatment: plaintext }"),
               std::string("notes: { class: internal, treatment: plaintext }").size(),
               "notes: { class: internal, tretment: plaintext }");
  testing::WriteFileOrDie(dir.File("bad.yaml"), yaml);
  testing::ProcessResult r = testing::RunProcess({KEYWARD_CLI, "schema", "check", dir.File("bad.yaml")});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr(dir.File("bad.yaml") + ":40: field customers.ssn is left plaintext"));
  EXPECT_THAT(r.err, HasSubstr(":41: unknown key \"tretment\""));
  r = testing::RunProcess({KEYWARD_CLI, "schema", "check", "--json", "-"}, yaml);
  EXPECT_EQ(r.exit_code, 3);
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["valid"], false);
  EXPECT_GE(j["problems"].size(), 2u);
  EXPECT_EQ(j["problems"][0]["line"], 40);
  r = testing::RunProcess({KEYWARD_CLI, "schema", "check", "examples/fields/customers.yaml"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("valid; data set customers, key customers, 1 table(s), 3 encrypted"));
  r = testing::RunProcess({KEYWARD_CLI, "schema", "policy", "examples/fields/customers.yaml"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("name: fields-customers-pci"));
  r = testing::RunProcess({KEYWARD_CLI, "schema", "check", dir.File("missing.yaml")});
  EXPECT_EQ(r.exit_code, 6) << r.err;  // io-error: the file cannot be read
}

INSTANTIATE_TEST_SUITE_P(Backends, FieldsE2eTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres), BackendName);

}  // namespace
}  // namespace keyward
