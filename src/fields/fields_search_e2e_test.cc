// Searchable encrypted fields end to end, on SQLite and on PostgreSQL:
// deterministic equality (empty values, several key generations), blind
// indexes on each transform and compound, false positives dropped, writers
// filling index columns, and `keyward fields find`.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <set>

#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "fields/db_values.h"
#include "fields/encryptor_access.h"
#include "fields/fields_e2e_fixture.h"
#include "fields/finder.h"
#include "fields/index_catalog.h"
#include "fields/index_job.h"
#include "keyward/errors.h"
#include "nlohmann/json.hpp"
#include "testing/subprocess.h"

namespace keyward {
namespace {

using ::testing::HasSubstr;

// The example table with every kind of searchable field.
constexpr char kSearchSchema[] = R"(version: 1
dataset: customers
key: customers
tenant_column: tenant_id
classes:
  pii: { encrypt: required, readers: ["*"] }
  pci: { encrypt: required, readers: ["*"] }
tables:
  customers:
    id_column: id
    fields:
      email:
        class: pii
        treatment: randomized
        indexes: [{ name: email_idx, transform: [trim, lowercase], bits: 16 }]
      card_number:
        class: pci
        treatment: randomized
        indexes: [{ name: card_last4, transform: [digits, "last:4"], bits: 12 }]
      ssn: { class: pii, treatment: deterministic }
      notes:
        class: pii
        treatment: randomized
        indexes: [{ name: notes_prefix, transform: ["normalize:NFKC", "first:5"], bits: 10 }]
    indexes:
      - { name: tenant_card, fields: [card_number, ssn], transform: [digits], bits: 6 }
)";

class FieldSearchE2eTest : public FieldsE2eTest {
 protected:
  void SetUp() override {
    FieldsE2eTest::SetUp();
    if (HasFatalFailure()) return;
    schema_path_ = server_->File("search.yaml");
    std::ofstream(schema_path_) << kSearchSchema;
    auto schema = FieldSchema::Load(schema_path_);
    ASSERT_TRUE(schema.ok()) << schema.status();
    schema_ = *schema;
  }

  // Encrypts and inserts rows through the SDK, as an application does
  // (with the index columns EncryptRow adds).
  void Insert(FieldEncryptor& enc, const std::vector<Customer>& rows) {
    for (const Customer& c : rows) {
      auto row = enc.EncryptRow("customers", RowOf(c));
      ASSERT_TRUE(row.ok()) << row.status();
      std::vector<std::string> names, marks;
      std::vector<appdb::Value> values;
      for (auto& [name, v] : *row) {
        names.push_back(name);
        marks.push_back(absl::StrCat("$", marks.size() + 1));
        values.push_back(fields::ToDb(std::move(v)));
      }
      KW_ASSERT_OK(db_->Execute(absl::StrCat("INSERT INTO customers (", absl::StrJoin(names, ", "),
                                             ") VALUES (", absl::StrJoin(marks, ", "), ")"),
                                values)
                       .status());
    }
  }

  std::map<std::string, int> Bits() {
    std::map<std::string, int> bits;
    for (const BlindIndex& i : schema_->Table("customers").value()->indexes) bits[i.name] = i.bits;
    return bits;
  }

  void Rebuild(FieldEncryptor& enc) {
    fields::IndexJobOptions options;
    options.bits = Bits();
    auto report = fields::RebuildIndexes(enc, *db_, "customers", options);
    ASSERT_TRUE(report.ok()) << report.status();
  }

  // The ids `conditions` find, after decryption.
  std::set<int64_t> Ids(FieldEncryptor& enc, std::vector<FieldEncryptor::Condition> conditions,
                        const std::string& tenant = "", fields::Finder::Result* out = nullptr) {
    auto finder = fields::Finder::New(enc, *db_, "customers");
    EXPECT_TRUE(finder.ok()) << finder.status();
    if (!finder.ok()) return {};
    auto found = (*finder)->Find(std::move(conditions), tenant);
    EXPECT_TRUE(found.ok()) << found.status();
    if (!found.ok()) return {};
    std::set<int64_t> ids;
    for (const auto& r : found->rows) ids.insert(std::get<int64_t>(r.row.at("id")));
    if (out != nullptr) *out = std::move(*found);
    return ids;
  }

  std::vector<Customer> People(int n) {
    std::vector<Customer> rows;
    for (int i = 1; i <= n; ++i) rows.push_back(Sample(i, i % 2 == 0 ? "globex" : "acme"));
    rows[0].email = "  Alice@Example.COM ";
    rows[1].email = "alice@example.com";
    rows[2].email = "bob@example.com";
    rows[3].ssn = "";  // an empty value is searchable too
    rows[5].ssn = "";
    rows[6].ssn = rows[8].ssn = "078-05-1120";  // acme twice
    rows[7].ssn = "078-05-1120";                // globex
    rows[9].notes = "\xEF\xAC\x81nance team";   // U+FB01 "fi" ligature
    rows[10].notes = "finance department";
    return rows;
  }

  std::string schema_path_;
};

TEST_P(FieldSearchE2eTest, DeterministicFieldsAreFoundByEqualityWithinATenant) {
  auto enc = Encryptor(server_->admin_config());
  ASSERT_NE(enc, nullptr);
  const auto people = People(40);
  Insert(*enc, people);
  // Equal values of one tenant encrypt equally (joins work); other tenants differ.
  const FieldRow r7 = StoredRow(7), r9 = StoredRow(9), r8 = StoredRow(8);
  EXPECT_EQ(r7.at("ssn"), r9.at("ssn"));
  EXPECT_NE(r7.at("ssn"), r8.at("ssn"));
  EXPECT_EQ(Ids(*enc, {{"ssn", std::string("078-05-1120")}}, "acme"), (std::set<int64_t>{7, 9}));
  EXPECT_EQ(Ids(*enc, {{"ssn", std::string("078-05-1120")}}, "globex"), (std::set<int64_t>{8}));
  EXPECT_EQ(Ids(*enc, {{"ssn", std::string("")}}, "globex"), (std::set<int64_t>{4, 6}));
  EXPECT_TRUE(Ids(*enc, {{"ssn", std::string("999-99-9999")}}, "acme").empty());
  // Every tenant has its own key: a search without one is refused.
  auto finder = fields::Finder::New(*enc, *db_, "customers");
  ASSERT_TRUE(finder.ok());
  EXPECT_THAT((*finder)->Find({{"ssn", std::string("078-05-1120")}}).status(),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--tenant")));

  // After a new data key generation, old and new values are both found.
  auto& keys = fields::EncryptorAccess::Keys(*enc);
  ASSERT_TRUE(keys.NewGeneration({"customers", "pii", "acme"}).ok());
  Customer late = Sample(100, "acme");
  late.ssn = "078-05-1120";
  Insert(*enc, {late});
  EXPECT_NE(StoredRow(100).at("ssn"), r7.at("ssn"));
  EXPECT_EQ(Ids(*enc, {{"ssn", std::string("078-05-1120")}}, "acme"),
            (std::set<int64_t>{7, 9, 100}));
  // Values decrypt to what was written, empty included.
  auto row4 = enc->DecryptRow("customers", StoredRow(4));
  ASSERT_TRUE(row4.ok()) << row4.status();
  EXPECT_EQ(row4->row.at("ssn"), FieldValue(std::string("")));
}

TEST_P(FieldSearchE2eTest, BlindIndexesFindEachTransformAndDropFalsePositives) {
  auto enc = Encryptor(server_->admin_config());
  ASSERT_NE(enc, nullptr);
  auto people = People(60);
  people[20].card = "4000-0000-0000-0021";  // last four "0021" also for row 22 below
  people[21].card = "5555 4444 3333 0021";
  Insert(*enc, people);  // before any index version exists: no index columns yet
  Rebuild(*enc);

  // trim + lowercase: any case and padding finds both spellings.
  EXPECT_EQ(Ids(*enc, {{"email", std::string("ALICE@EXAMPLE.COM")}}), (std::set<int64_t>{1, 2}));
  EXPECT_EQ(Ids(*enc, {{"email_idx", std::string(" alice@EXAMPLE.com")}}),
            (std::set<int64_t>{1, 2}));
  // digits + last:4, by the field or by the index's name.
  EXPECT_EQ(Ids(*enc, {{"card_last4", std::string("0021")}}), (std::set<int64_t>{21, 22}));
  EXPECT_EQ(Ids(*enc, {{"card_number", std::string("9999-9999-9999-0021")}}),
            (std::set<int64_t>{21, 22}));
  // NFKC + first:5: the ligature folds to "fi".
  EXPECT_EQ(Ids(*enc, {{"notes", std::string("finan")}}), (std::set<int64_t>{10, 11}));
  // Compound (card_number, ssn) through conditions on both.
  EXPECT_EQ(Ids(*enc, {{"card_number", people[6].card}, {"ssn", people[6].ssn}}, "acme"),
            (std::set<int64_t>{7}));
  // Conditions AND together; the tenant restricts.
  EXPECT_EQ(Ids(*enc, {{"email", std::string("alice@example.com")}}, "globex"),
            (std::set<int64_t>{2}));
  EXPECT_TRUE(Ids(*enc, {{"email", std::string("nobody@example.com")}}).empty());

  // A field without an index cannot be searched, and says why.
  auto finder = fields::Finder::New(*enc, *db_, "customers");
  ASSERT_TRUE(finder.ok());
  EXPECT_THAT((*finder)->Find({{"phone", std::string("1")}}).status(),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no field")));

  // Rows written after the build carry their index values.
  Customer later = Sample(200, "acme");
  later.email = "Carol@Example.com";
  Insert(*enc, {later});
  EXPECT_EQ(Ids(*enc, {{"email", std::string("carol@example.com")}}), (std::set<int64_t>{200}));
}

TEST_P(FieldSearchE2eTest, ATwoBitIndexStillReturnsOnlyTrueMatches) {
  std::string yaml = kSearchSchema;
  yaml.replace(yaml.find("bits: 16"), 8, "bits: 2");
  std::ofstream(schema_path_) << yaml;
  schema_ = FieldSchema::Load(schema_path_).value();
  auto enc = Encryptor(server_->admin_config());
  ASSERT_NE(enc, nullptr);
  Insert(*enc, People(200));
  Rebuild(*enc);
  fields::Finder::Result result;
  EXPECT_EQ(Ids(*enc, {{"email", std::string("bob@example.com")}}, "", &result),
            (std::set<int64_t>{3}));
  // 2 bits: about a quarter of the table shares bob's index value.
  EXPECT_GT(result.candidates, 20u);
  EXPECT_EQ(result.false_positives, result.candidates - 1);
  std::printf("2-bit index: %llu candidates, %llu false positives dropped\n",
              static_cast<unsigned long long>(result.candidates),
              static_cast<unsigned long long>(result.false_positives));
}

// From the attacker's side: someone who can write the database rewrites
// keyward_field_indexes to aim index writes at a data column, to key an
// index by another class, or to widen it.  Keyward refuses the rows
// instead of overwriting, dropping or weakening anything.  (Pointing an
// index at another field of the same class is not caught: it only makes
// searches miss rows, as docs/fields.md says.)
TEST_P(FieldSearchE2eTest, ATamperedIndexCatalogIsRefusedNotObeyed) {
  auto enc = Encryptor(server_->admin_config());
  ASSERT_NE(enc, nullptr);
  Insert(*enc, People(20));
  Rebuild(*enc);
  const char* attacks[] = {
      "UPDATE keyward_field_indexes SET column_name = 'notes' WHERE index_name = 'email_idx'",
      "UPDATE keyward_field_indexes SET key_refs = replace(key_refs, 'pci:', 'pii:') "
      "WHERE index_name = 'card_last4'",
      "UPDATE keyward_field_indexes SET bits = 32 WHERE index_name = 'email_idx'",
  };
  for (const char* attack : attacks) {
    SCOPED_TRACE(attack);
    KW_ASSERT_OK(db_->Execute("DROP TABLE IF EXISTS saved_indexes").status());
    KW_ASSERT_OK(db_->Execute("CREATE TABLE saved_indexes AS SELECT * FROM keyward_field_indexes")
                     .status());
    KW_ASSERT_OK(db_->Execute(attack).status());
    auto fresh = Encryptor(server_->admin_config());
    ASSERT_NE(fresh, nullptr);
    Customer c = Sample(500, "acme");
    auto row = fresh->EncryptRow("customers", RowOf(c));
    EXPECT_EQ(row.status().code(), absl::StatusCode::kDataLoss) << row.status();
    auto finder = fields::Finder::New(*fresh, *db_, "customers");
    ASSERT_TRUE(finder.ok());
    EXPECT_EQ((*finder)->Find({{"email", std::string("bob@example.com")}}).status().code(),
              absl::StatusCode::kDataLoss);
    auto retire = server_->Cli({"index", "retire", "--schema", schema_path_, "--db", url_,
                                "--table", "customers"},
                               server_->admin_config());
    EXPECT_EQ(retire.exit_code, 4) << retire.err;  // integrity
    // Nothing was dropped or overwritten: the notes column still decrypts.
    auto notes = enc->DecryptRow("customers", StoredRow(3));
    ASSERT_TRUE(notes.ok()) << notes.status();
    EXPECT_EQ(notes->row.at("notes"), FieldValue(People(20)[2].notes));
    KW_ASSERT_OK(db_->Execute("DELETE FROM keyward_field_indexes").status());
    KW_ASSERT_OK(db_->Execute("INSERT INTO keyward_field_indexes SELECT * FROM saved_indexes")
                     .status());
  }
  auto fresh = Encryptor(server_->admin_config());
  EXPECT_EQ(Ids(*fresh, {{"email", std::string("bob@example.com")}}), (std::set<int64_t>{3}));
}

TEST_P(FieldSearchE2eTest, FieldsFindPrintsTheDecryptedMatches) {
  auto enc = Encryptor(server_->admin_config());
  ASSERT_NE(enc, nullptr);
  Insert(*enc, People(30));
  Rebuild(*enc);
  auto rows = CliJson({"fields", "find", "--schema", schema_path_, "--db", url_, "--table",
                       "customers", "--where", "email=ALICE@EXAMPLE.COM", "--json"},
                      server_->admin_config());
  ASSERT_TRUE(rows.is_array()) << rows.dump();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["id"], 1);
  EXPECT_EQ(rows[0]["email"], "  Alice@Example.COM ");
  EXPECT_EQ(rows[1]["email"], "alice@example.com");
  EXPECT_FALSE(rows[0].contains("_keyward_errors"));
  auto det = CliJson({"fields", "find", "--schema", schema_path_, "--db", url_, "--table",
                      "customers", "--where", "ssn=078-05-1120", "--tenant", "acme", "--json"},
                     server_->admin_config());
  ASSERT_EQ(det.size(), 2u);
  EXPECT_EQ(det[1]["id"], 9);
  auto none = CliJson({"fields", "find", "--schema", schema_path_, "--db", url_, "--table",
                       "customers", "--where", "email=nobody@example.com", "--json"},
                      server_->admin_config());
  EXPECT_EQ(none, nlohmann::json::array());
  // A field that cannot be searched: bad input, exit 3, one line saying why.
  auto bad = server_->Cli({"fields", "find", "--schema", schema_path_, "--db", url_, "--table",
                           "customers", "--where", "tenant_card=1"},
                          server_->admin_config());
  EXPECT_EQ(bad.exit_code, 3) << bad.err;
  EXPECT_THAT(bad.err, HasSubstr("compound"));

  // Erasing a tenant clears its rows' index values too: nothing is left to
  // test guesses against, and searches find the other tenants' rows only.
  CliJson({"tenant", "erase", "--schema", schema_path_, "--db", url_, "--tenant", "acme", "--yes",
           "--json"},
          server_->admin_config());
  auto left = db_->Query("SELECT COUNT(*) FROM customers WHERE tenant_id = 'acme' AND "
                         "(email_idx IS NOT NULL OR card_last4 IS NOT NULL)");
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_EQ(std::get<int64_t>((*left)[0][0]), 0);
  auto after = CliJson({"fields", "find", "--schema", schema_path_, "--db", url_, "--table",
                        "customers", "--where", "email=ALICE@EXAMPLE.COM", "--json"},
                       server_->admin_config());
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0]["id"], 2);
}

TEST_P(FieldSearchE2eTest, SearchesStayExactWhileAnIndexRebuildAfterRotationIsKilledFiveTimes) {
  auto enc = Encryptor(server_->admin_config());
  ASSERT_NE(enc, nullptr);
  std::vector<Customer> people = People(3000);
  Insert(*enc, people);
  Rebuild(*enc);
  // The pii data key is rotated: email_idx must move to a key of the new generation.
  ASSERT_TRUE(fields::EncryptorAccess::Keys(*enc).NewGeneration({"customers", "pii", ""}).ok());
  const std::string user = absl::StrCat("USER1501@", people[1500].tenant, ".example");
  auto check = [&](int64_t extra_id) {
    EXPECT_EQ(Ids(*enc, {{"email", std::string("alice@example.com")}}), (std::set<int64_t>{1, 2}));
    EXPECT_EQ(Ids(*enc, {{"email", user}}), (std::set<int64_t>{1501}));
    if (extra_id > 0) {
      EXPECT_EQ(Ids(*enc, {{"email", absl::StrCat("writer", extra_id, "@example.com")}}),
                (std::set<int64_t>{extra_id}));
    }
  };
  std::mt19937 rng(13);
  std::uniform_int_distribution<int> delay_ms(200, 1500);
  int killed_mid_run = 0, searches = 0;
  for (int round = 0; round < 5; ++round) {
    std::vector<std::string> args = {KEYWARD_CLI, "--config", server_->admin_config(), "index",
                                     "rebuild", "--schema", schema_path_, "--db", url_, "--table",
                                     "customers", "--index", "email_idx", "--rows", "1e6",
                                     "--batch", "50", "--rate", "1500"};
    const pid_t pid = testing::SpawnQuietly(args);
    // Searches and a writer while the job runs.
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms(rng));
    Customer writer = Sample(10000 + round, "acme");
    writer.email = absl::StrCat("Writer", writer.id, "@Example.com");
    Insert(*enc, {writer});
    while (std::chrono::steady_clock::now() < until) {
      check(writer.id);
      ++searches;
      if (HasFailure()) break;
    }
    if (testing::KillIfRunning(pid)) {
      ++killed_mid_run;
    }
    check(writer.id);
    if (HasFailure()) return;
  }
  std::printf("index rebuild killed mid-run in %d of 5 rounds; %d searches during the runs\n",
              killed_mid_run, searches);
  EXPECT_GE(killed_mid_run, 4) << "the kills should land while the job runs";
  // The last run finishes: version 2 active, version 1 retired.
  auto done = CliJson({"index", "rebuild", "--schema", schema_path_, "--db", url_, "--table",
                       "customers", "--index", "email_idx", "--rows", "1e6", "--json"},
                      server_->admin_config());
  ASSERT_EQ(done["indexes"].size(), 1u) << done.dump();
  EXPECT_EQ(done["indexes"][0]["version"], 2);
  EXPECT_EQ(done["indexes"][0]["column"], "email_idx_v2");
  EXPECT_EQ(done["indexes"][0]["failed"], 0);
  EXPECT_EQ(done["indexes"][0]["replaces"], "email_idx");
  auto versions = fields::LoadIndexVersions(*db_, "customers", "customers");
  ASSERT_TRUE(versions.ok()) << versions.status();
  std::map<int64_t, fields::IndexState> states;
  for (const auto& v : *versions) {
    if (v.index == "email_idx") states[v.version] = v.state;
  }
  EXPECT_EQ(states[1], fields::IndexState::kRetired);
  EXPECT_EQ(states[2], fields::IndexState::kActive);
  // Every row has a version-2 value but rows with a NULL email.
  auto missing = db_->Query("SELECT COUNT(*) FROM customers WHERE email_idx_v2 IS NULL AND "
                            "email IS NOT NULL");
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_EQ(std::get<int64_t>((*missing)[0][0]), 0);
  absl::SleepFor(absl::Seconds(fields::kIndexRefreshSeconds));
  check(10004);
  // A second run finds it up to date; retire drops the old column.
  auto again = CliJson({"index", "rebuild", "--schema", schema_path_, "--db", url_, "--table",
                        "customers", "--index", "email_idx", "--rows", "1e6", "--json"},
                       server_->admin_config());
  EXPECT_EQ(again["indexes"][0]["action"], "up to date");
  auto retired = CliJson({"index", "retire", "--schema", schema_path_, "--db", url_, "--table",
                          "customers", "--json"},
                         server_->admin_config());
  EXPECT_EQ(retired["dropped"], nlohmann::json::array({"email_idx"}));
  absl::SleepFor(absl::Seconds(fields::kIndexRefreshSeconds));
  check(10004);
  auto columns = db_->ListColumns("customers");
  ASSERT_TRUE(columns.ok());
  for (const auto& c : *columns) EXPECT_NE(c.name, "email_idx");
}

// `keyward reencrypt --schema` after a key rotation moves deterministic
// values to the new data keys: while it runs (and after a kill -9), old and
// new generations are both searched, so every lookup stays exact.
TEST_P(FieldSearchE2eTest, DeterministicLookupsStayExactWhileReencryptRuns) {
  auto enc = Encryptor(server_->admin_config());
  ASSERT_NE(enc, nullptr);
  std::vector<Customer> people = People(2000);
  for (auto& c : people) c.ssn = absl::StrCat("ssn-", c.id % 50);  // 40 rows per value
  Insert(*enc, people);
  std::set<int64_t> want;
  for (const auto& c : people) {
    if (c.ssn == "ssn-7" && c.tenant == "acme") want.insert(c.id);
  }
  ASSERT_EQ(server_->Cli({"key", "rotate", "customers"}).exit_code, 0);
  std::vector<std::string> args = {KEYWARD_CLI, "--config", server_->admin_config(), "reencrypt",
                                   "--schema", schema_path_, "--db", url_, "--table",
                                   "customers", "--batch", "50", "--rate", "1000"};
  const pid_t pid = testing::SpawnQuietly(args);
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1200);
  int searches = 0;
  while (std::chrono::steady_clock::now() < until && !HasFailure()) {
    EXPECT_EQ(Ids(*enc, {{"ssn", std::string("ssn-7")}}, "acme"), want);
    ++searches;
  }
  const bool killed = testing::KillIfRunning(pid);
  EXPECT_TRUE(killed) << "reencrypt should still be running when killed";
  // Mid-way: some values under the new generation, some under the old.
  auto generations = fields::EncryptorAccess::Keys(*enc).vault().Generations(
      {"customers", "pii", "acme"});
  ASSERT_TRUE(generations.ok());
  EXPECT_EQ(generations->size(), 2u);
  std::set<uint32_t> refs;
  for (int64_t id : want) refs.insert(FieldEncryptor::KeyRefOf(StoredRow(id).at("ssn")).value());
  std::printf("searches during reencrypt: %d; key refs among the matches after the kill: %zu\n",
              searches, refs.size());
  EXPECT_EQ(Ids(*enc, {{"ssn", std::string("ssn-7")}}, "acme"), want);
  auto done = CliJson({"reencrypt", "--schema", schema_path_, "--db", url_, "--table",
                       "customers", "--json"},
                      server_->admin_config());
  EXPECT_EQ(done["failed"], 0);
  auto fresh = Encryptor(server_->admin_config());
  ASSERT_NE(fresh, nullptr);
  EXPECT_EQ(Ids(*fresh, {{"ssn", std::string("ssn-7")}}, "acme"), want);
  refs.clear();
  for (int64_t id : want) refs.insert(FieldEncryptor::KeyRefOf(StoredRow(id).at("ssn")).value());
  EXPECT_EQ(refs.size(), 1u);  // all under the newest generation now
}

INSTANTIATE_TEST_SUITE_P(Backends, FieldSearchE2eTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres), BackendName);

}  // namespace
}  // namespace keyward
