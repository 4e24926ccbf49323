// The scanner on a fixture database (classify/scan_fixture.h) in SQLite and
// in a throwaway PostgreSQL: what it reports, what it must not, the counts,
// and the draft schema read back as YAML.
#include "classify/scan.h"

#include <atomic>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "classify/draft_schema.h"
#include "classify/scan_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/postgres_server.h"
#include "testing/status_matchers.h"
#include "testing/subprocess.h"
#include "yaml-cpp/yaml.h"

namespace keyward::classify {
namespace {

using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr int kRows = 200;

struct SqliteBackend {
  static constexpr appdb::Dialect kDialect = appdb::Dialect::kSqlite;
  static absl::StatusOr<std::string> NewDatabaseUrl(
      const keyward::testing::TempDir& dir) {
    return absl::StrCat("sqlite:", dir.File("shop.db"));
  }
};

struct PostgresBackend {
  static constexpr appdb::Dialect kDialect = appdb::Dialect::kPostgres;
  static absl::StatusOr<std::string> NewDatabaseUrl(
      const keyward::testing::TempDir&) {
    static std::atomic<int> n{0};
    auto server = keyward::testing::SharedPostgresServer();
    if (!server.ok()) return server.status();
    return (*server)->CreateDatabase(absl::StrCat("shop_", ++n));
  }
};

template <typename Backend>
class ScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KW_ASSERT_OK_AND_ASSIGN(std::string url, Backend::NewDatabaseUrl(dir_));
    KW_ASSERT_OK_AND_ASSIGN(db_, appdb::Database::Open(url, /*create=*/true));
    KW_ASSERT_OK_AND_ASSIGN(planted_, testing::BuildScanFixture(*db_, kRows));
  }
  std::map<std::string, ColumnReport> ByName(const ScanResult& scan) {
    std::map<std::string, ColumnReport> out;
    for (const ColumnReport& c : scan.columns)
      out[c.table + "." + c.column] = c;
    return out;
  }

  keyward::testing::TempDir dir_;
  std::unique_ptr<appdb::Database> db_;
  testing::PlantedValues planted_;
};

using Backends = ::testing::Types<SqliteBackend, PostgresBackend>;
class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return T::kDialect == appdb::Dialect::kSqlite ? "Sqlite" : "Postgres";
  }
};
TYPED_TEST_SUITE(ScanTest, Backends, BackendNames);

TYPED_TEST(ScanTest, ReportsPlantedColumnsAndNothingElse) {
  KW_ASSERT_OK_AND_ASSIGN(ScanResult scan, Scan(*this->db_, {}));
  EXPECT_EQ(scan.database, this->db_->RedactedUrl());
  ASSERT_EQ(scan.tables.size(), 2u);
  EXPECT_EQ(scan.tables[0].name, "customers");
  EXPECT_EQ(scan.tables[0].id_column, "id");
  EXPECT_EQ(scan.tables[0].rows_sampled, kRows);
  EXPECT_TRUE(scan.tables[0].random_sample);
  EXPECT_EQ(scan.tables[1].name, "sessions");
  EXPECT_EQ(scan.tables[1].id_column, "");
  auto columns = this->ByName(scan);
  ASSERT_EQ(columns.size(), 10u);

  const ColumnReport& card = columns["customers.card"];
  EXPECT_TRUE(card.sensitive());
  EXPECT_EQ(card.kind, Kind::kCard);
  EXPECT_EQ(card.matches, kRows);
  EXPECT_EQ(card.sampled, kRows);
  EXPECT_EQ(card.encrypted, 0);
  EXPECT_THAT(card.example, StartsWith("•••• •••• •••• "));

  const ColumnReport& email = columns["customers.email"];
  EXPECT_TRUE(email.sensitive());
  EXPECT_EQ(email.kind, Kind::kEmail);
  EXPECT_EQ(email.matches, kRows);
  EXPECT_THAT(email.example, HasSubstr("•••@mail.example.com"));

  const ColumnReport& token = columns["sessions.token"];
  EXPECT_TRUE(token.sensitive());
  EXPECT_EQ(token.kind, Kind::kJwt);
  EXPECT_EQ(token.matches, kRows);

  // Random 16-digit references that fail Luhn: not a single match.
  const ColumnReport& ref = columns["customers.order_ref"];
  EXPECT_FALSE(ref.sensitive());
  EXPECT_EQ(ref.matches, 0);
  EXPECT_EQ(ref.sampled, kRows);

  for (const char* name : {"customers.ssn_enc", "customers.card_enc"}) {
    const ColumnReport& encrypted = columns[name];
    EXPECT_FALSE(encrypted.sensitive()) << name;
    EXPECT_EQ(encrypted.encrypted, kRows) << name;
    EXPECT_EQ(encrypted.matches, 0) << name;
  }

  for (const char* plain : {"customers.id", "customers.notes",
                            "customers.visits", "sessions.user_agent"}) {
    EXPECT_FALSE(columns[plain].sensitive()) << plain;
    EXPECT_EQ(columns[plain].matches, 0) << plain;
    EXPECT_EQ(columns[plain].sampled, kRows) << plain;
  }
}

TYPED_TEST(ScanTest, ExamplesAndDraftNeverHoldAPlantedValue) {
  KW_ASSERT_OK_AND_ASSIGN(ScanResult scan, Scan(*this->db_, {}));
  std::string shown = DraftSchema(scan, absl::Now());
  for (const ColumnReport& c : scan.columns) shown += c.example + "\n";
  for (const std::string& value : this->planted_.All()) {
    ASSERT_THAT(shown, Not(HasSubstr(value)));
  }
}

TYPED_TEST(ScanTest, DraftSchemaParsesWithTheUsedClasses) {
  KW_ASSERT_OK_AND_ASSIGN(ScanResult scan, Scan(*this->db_, {}));
  const std::string draft =
      DraftSchema(scan, absl::FromUnixSeconds(1767225600));  // 2026-01-01
  EXPECT_THAT(draft,
              StartsWith("# Draft from `keyward classify scan` on " +
                         scan.database + ", 2026-01-01. Review before use.\n"));
  YAML::Node yaml = YAML::Load(draft);
  EXPECT_EQ(yaml["version"].as<int>(), 1);
  EXPECT_EQ(yaml["dataset"].as<std::string>(), scan.dataset);
  EXPECT_EQ(yaml["key"].as<std::string>(), scan.dataset);
  ASSERT_TRUE(yaml["classes"].IsMap());
  EXPECT_EQ(yaml["classes"].size(), 3u);
  for (const char* cls : {"pci", "pii", "secret"}) {
    EXPECT_EQ(yaml["classes"][cls]["encrypt"].as<std::string>(), "required")
        << cls;
    EXPECT_EQ(yaml["classes"][cls]["readers"][0].as<std::string>(), "app")
        << cls;
  }
  YAML::Node customers = yaml["tables"]["customers"];
  EXPECT_EQ(customers["id_column"].as<std::string>(), "id");
  EXPECT_EQ(customers["fields"].size(), 2u);
  EXPECT_EQ(customers["fields"]["card"]["class"].as<std::string>(), "pci");
  EXPECT_EQ(customers["fields"]["card"]["treatment"].as<std::string>(),
            "randomized");
  EXPECT_EQ(customers["fields"]["email"]["class"].as<std::string>(), "pii");
  YAML::Node sessions = yaml["tables"]["sessions"];
  EXPECT_EQ(sessions["id_column"].as<std::string>(), "id");
  EXPECT_THAT(draft, HasSubstr("TODO: no primary key"));
  EXPECT_EQ(sessions["fields"]["token"]["class"].as<std::string>(), "secret");
  EXPECT_THAT(draft, HasSubstr(absl::StrCat("# card numbers: ", kRows, " of ",
                                            kRows, " sampled")));
}

TYPED_TEST(ScanTest, SampleSizeAndTableSelection) {
  KW_ASSERT_OK_AND_ASSIGN(
      ScanResult scan, Scan(*this->db_, {.table = "customers", .sample = 50}));
  ASSERT_EQ(scan.tables.size(), 1u);
  EXPECT_EQ(scan.tables[0].rows_sampled, 50);
  for (const ColumnReport& c : scan.columns) {
    EXPECT_EQ(c.table, "customers");
    EXPECT_EQ(c.sampled, 50) << c.column;
  }
  EXPECT_THAT(Scan(*this->db_, {.table = "nope"}),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Scan(*this->db_, {.sample = 0}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TYPED_TEST(ScanTest, AColumnIsReportedFromFivePercent) {
  appdb::Database& db = *this->db_;
  KW_ASSERT_OK(db.Execute("CREATE TABLE mixed (id INTEGER PRIMARY KEY, few "
                          "TEXT, enough TEXT)")
                   .status());
  KW_ASSERT_OK(db.Begin());
  for (int64_t i = 0; i < 100; ++i) {
    // 4% and 5% of the rows hold an email; the rest ordinary words.
    const std::string email = absl::StrCat("someone", i, "@example.org");
    KW_ASSERT_OK(
        db.Execute("INSERT INTO mixed (id, few, enough) VALUES ($1, $2, $3)",
                   {i, i < 4 ? email : std::string("nothing"),
                    i < 5 ? email : std::string("nothing")})
            .status());
  }
  KW_ASSERT_OK(db.Commit());
  KW_ASSERT_OK_AND_ASSIGN(ScanResult scan, Scan(db, {.table = "mixed"}));
  auto columns = this->ByName(scan);
  EXPECT_EQ(columns["mixed.few"].matches, 4);
  EXPECT_FALSE(columns["mixed.few"].sensitive());
  EXPECT_EQ(columns["mixed.enough"].matches, 5);
  EXPECT_TRUE(columns["mixed.enough"].sensitive());
}

TEST(DraftSchema, EmptyScanAndQuotedNames) {
  ScanResult scan{.database = "sqlite:/x/empty.db", .dataset = "empty"};
  std::string draft = DraftSchema(scan, absl::Now());
  YAML::Node yaml = YAML::Load(draft);
  EXPECT_EQ(yaml["classes"].size(), 0u);
  EXPECT_EQ(yaml["tables"].size(), 0u);

  scan.tables.push_back(
      {.name = "order items", .id_column = "yes", .primary_key = {"yes"}});
  scan.columns.push_back({.table = "order items",
                          .column = "e-mail: \"work\"",
                          .sampled = 10,
                          .kind = Kind::kEmail,
                          .matches = 10});
  yaml = YAML::Load(DraftSchema(scan, absl::Now()));
  EXPECT_EQ(yaml["tables"]["order items"]["id_column"].as<std::string>(),
            "yes");
  EXPECT_EQ(yaml["tables"]["order items"]["fields"]["e-mail: \"work\""]["class"]
                .as<std::string>(),
            "pii");
  EXPECT_EQ(yaml["classes"].size(), 1u);
}

}  // namespace
}  // namespace keyward::classify
