// Tables of encrypted fields end to end, on SQLite and on PostgreSQL:
// encrypt-table survives kill -9 and loses nothing, decrypt-table restores
// the originals, reencrypt moves fields to a rotated key, and tenant
// erasure makes a tenant's data unreadable in every copy of the database.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <thread>

#include "fields/fields_e2e_fixture.h"
#include "keyward/errors.h"
#include "nlohmann/json.hpp"
#include "testing/subprocess.h"

namespace keyward {
namespace {

using ::testing::HasSubstr;

constexpr char kSchema[] = "examples/fields/customers.yaml";

class FieldTablesE2eTest : public FieldsE2eTest {
 protected:
  std::vector<Customer> Populate(int n) {
    std::vector<Customer> rows;
    for (int i = 1; i <= n; ++i) rows.push_back(Sample(i, i % 3 == 0 ? "globex" : "acme"));
    rows[4].ssn = "";          // empty values round-trip
    rows[5].email = "";
    InsertPlain(rows);
    // A NULL stays NULL.
    EXPECT_TRUE(db_->Execute("UPDATE customers SET card_number = NULL WHERE id = 7").ok());
    rows[6].card = "<NULL>";
    return rows;
  }

  // Every row holds either its plaintext or a value that decrypts to it.
  // Returns how many values are encrypted.
  int CheckAll(FieldEncryptor& enc, const std::vector<Customer>& originals) {
    auto rows = db_->Query("SELECT id, tenant_id, email, card_number, ssn, notes FROM customers "
                           "WHERE id <= $1 ORDER BY id",
                           {static_cast<int64_t>(originals.size())});
    EXPECT_TRUE(rows.ok()) << rows.status();
    if (!rows.ok()) return -1;
    EXPECT_EQ(rows->size(), originals.size());
    int encrypted = 0;
    for (size_t i = 0; i < rows->size() && i < originals.size(); ++i) {
      const Customer& c = originals[i];
      const auto& r = (*rows)[i];
      FieldEncryptor::Location where{"customers", "", absl::StrCat(c.id), c.tenant};
      const std::pair<const char*, const std::string*> columns[] = {
          {"email", &c.email}, {"card_number", &c.card}, {"ssn", &c.ssn}};
      for (int k = 0; k < 3; ++k) {
        where.column = columns[k].first;
        const appdb::Value& v = r[2 + k];
        if (*columns[k].second == "<NULL>") {
          EXPECT_TRUE(std::holds_alternative<std::monostate>(v)) << c.id;
          continue;
        }
        if (!std::holds_alternative<std::string>(v)) {
          ADD_FAILURE() << "row " << c.id << " " << where.column << " is not text";
          continue;
        }
        const std::string& s = std::get<std::string>(v);
        if (s == *columns[k].second) continue;
        ++encrypted;
        auto back = enc.DecryptValue(where, s);
        EXPECT_TRUE(back.ok()) << "row " << c.id << " " << where.column << ": " << back.status();
        if (back.ok()) {
          EXPECT_EQ(*back, FieldValue(*columns[k].second)) << c.id;
        }
      }
      EXPECT_EQ(std::get<std::string>(r[5]), c.notes);  // plaintext column untouched
    }
    return encrypted;
  }

  std::vector<std::string> Args(std::vector<std::string> extra) {
    std::vector<std::string> a = {KEYWARD_CLI, "--config", server_->admin_config()};
    for (auto& e : extra) a.push_back(std::move(e));
    return a;
  }
};

TEST_P(FieldTablesE2eTest, EncryptTableSurvivesKillNineTenTimesAndLosesNothing) {
  const std::vector<Customer> originals = Populate(10000);
  auto enc = Encryptor(server_->admin_config());
  ASSERT_NE(enc, nullptr);
  std::mt19937 rng(20261202);
  // Even rounds throttled, so that every run lasts long enough to be killed
  // mid-way; odd rounds at full speed with small batches, killed soon after
  // they start.
  std::uniform_int_distribution<int> throttled_delay_ms(100, 1500);
  std::uniform_int_distribution<int> full_speed_delay_ms(30, 250);
  int killed_mid_run = 0;
  for (int round = 0; round < 10; ++round) {
    const bool throttled = round % 2 == 0;
    std::vector<std::string> args = Args({"fields", "encrypt-table", "--schema", kSchema, "--db",
                                          url_, "--table", "customers", "--batch",
                                          throttled ? "100" : "20"});
    if (throttled) {
      args.push_back("--rate");
      args.push_back("3000");
    }
    const pid_t pid = testing::SpawnQuietly(args);
    std::this_thread::sleep_for(std::chrono::milliseconds(
        throttled ? throttled_delay_ms(rng) : full_speed_delay_ms(rng)));
    if (testing::KillIfRunning(pid)) {
      ++killed_mid_run;
    }
    CheckAll(*enc, originals);  // after every kill: nothing lost, nothing half-written
    if (HasFailure()) return;
  }
  std::printf("encrypt-table killed mid-run in %d of 10 rounds\n", killed_mid_run);
  EXPECT_GE(killed_mid_run, 5) << "the kills should land while the job runs";
  // A final run finishes the job; a second one finds nothing to do.
  auto done = CliJson({"fields", "encrypt-table", "--schema", kSchema, "--db", url_, "--table",
                       "customers", "--json"});
  EXPECT_EQ(done["failed"], 0);
  EXPECT_EQ(CheckAll(*enc, originals), 3 * 10000 - 1 /*NULL*/);
  auto again = CliJson({"fields", "encrypt-table", "--schema", kSchema, "--db", url_, "--table",
                        "customers", "--json"});
  EXPECT_EQ(again["changed"], 0);
  EXPECT_EQ(again["resumed"], false);
  EXPECT_EQ(again["already"], 3 * 10000 - 1);

  // Reads by row, as the CLI does them.
  auto row = CliJson({"fields", "get", "--schema", kSchema, "--db", url_, "--table", "customers",
                      "--id", "42", "--json"});
  EXPECT_EQ(row["values"]["email"], originals[41].email);
  EXPECT_EQ(row["values"]["notes"], originals[41].notes);

  // decrypt-table restores every original value, NULLs and empties included.
  auto dry = CliJson({"fields", "decrypt-table", "--schema", kSchema, "--db", url_, "--table",
                      "customers", "--dry-run", "--json"});
  EXPECT_EQ(dry["changed"], 10000);
  EXPECT_EQ(CheckAll(*enc, originals), 3 * 10000 - 1);  // the dry run wrote nothing
  auto back = CliJson({"fields", "decrypt-table", "--schema", kSchema, "--db", url_, "--table",
                       "customers", "--json"});
  EXPECT_EQ(back["changed"], 10000);
  EXPECT_EQ(CheckAll(*enc, originals), 0);
}

TEST_P(FieldTablesE2eTest, ReencryptMovesFieldsToTheRotatedKey) {
  const std::vector<Customer> originals = Populate(300);
  auto enc = Encryptor(server_->admin_config());
  ASSERT_NE(enc, nullptr);
  CliJson({"fields", "encrypt-table", "--schema", kSchema, "--db", url_, "--table", "customers",
           "--json"});
  auto refs = [&] {
    auto r = db_->Query("SELECT ref, kek_version FROM keyward_field_keys ORDER BY ref");
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : std::vector<appdb::ResultRow>();
  };
  // A row written by the application with typed values (JSON, a NaN real):
  // rotation carries them over exactly.
  const FieldRow typed = {{"id", int64_t{100000}},
                          {"tenant_id", std::string("acme")},
                          {"email", FieldJson{R"({"primary":"a@x","verified":true})"}},
                          {"card_number", std::numeric_limits<double>::quiet_NaN()},
                          {"ssn", int64_t{-42}},
                          {"notes", std::string("typed")}};
  KW_ASSERT_OK_AND_ASSIGN(FieldRow typed_stored, enc->EncryptRow("customers", typed));
  KW_ASSERT_OK(db_->Execute("INSERT INTO customers VALUES ($1, $2, $3, $4, $5, $6)",
                            {int64_t{100000}, std::string("acme"),
                             std::get<std::string>(typed_stored["email"]),
                             std::get<std::string>(typed_stored["card_number"]),
                             std::get<std::string>(typed_stored["ssn"]), std::string("typed")})
                   .status());
  const auto before = refs();
  EXPECT_EQ(before.size(), 4u);  // pii and pci, for acme and globex
  ASSERT_EQ(server_->Cli({"key", "rotate", "customers"}).exit_code, 0);
  auto r = CliJson({"reencrypt", "--schema", kSchema, "--db", url_, "--table", "customers",
                    "--json"});
  EXPECT_EQ(r["new_keys"], 4);
  EXPECT_EQ(r["changed"], 301);
  EXPECT_EQ(r["failed"], 0);
  EXPECT_EQ(r["rewrapped_keys"], 4);  // the older generations, now under version 2
  const auto after = refs();
  EXPECT_EQ(after.size(), 8u);
  for (const auto& k : after) EXPECT_EQ(std::get<int64_t>(k[1]), 2);
  auto fresh = Encryptor(server_->admin_config());
  EXPECT_EQ(CheckAll(*fresh, originals), 3 * 300 - 1);
  KW_ASSERT_OK_AND_ASSIGN(DecryptedRow back, fresh->DecryptRow("customers", StoredRow(100000)));
  EXPECT_EQ(back.row["email"], typed.at("email"));
  EXPECT_TRUE(std::isnan(std::get<double>(back.row["card_number"])));
  EXPECT_EQ(back.row["ssn"], FieldValue(int64_t{-42}));
  KW_ASSERT_OK_AND_ASSIGN(uint32_t typed_ref, FieldEncryptor::KeyRefOf(StoredRow(100000)["email"]));
  for (const auto& k : before) EXPECT_NE(static_cast<uint32_t>(std::get<int64_t>(k[0])), typed_ref);
  // Every value now names a new-generation key.
  auto row = StoredRow(1);
  KW_ASSERT_OK_AND_ASSIGN(uint32_t ref, FieldEncryptor::KeyRefOf(row["email"]));
  for (const auto& k : before) EXPECT_NE(static_cast<uint32_t>(std::get<int64_t>(k[0])), ref);
  // The key table is reported as a data set, all under version 2.
  auto versions = CliJson({"key", "versions", "customers", "--json"});
  EXPECT_THAT(versions.dump(), HasSubstr("keyward_field_keys/customers"));
}

// Erasure destroys the tenant's key material inside keywardd: a copy of
// the database taken before it cannot be decrypted after it.
TEST_P(FieldTablesE2eTest, TenantErasureLeavesEveryCopyUnreadableAndOtherTenantsUntouched) {
  const std::vector<Customer> originals = Populate(60);
  auto enc = Encryptor(server_->app_config());
  ASSERT_NE(enc, nullptr);
  CliJson({"fields", "encrypt-table", "--schema", kSchema, "--db", url_, "--table", "customers",
           "--json"});
  // The "backup": every wrapped key and every row, as they are now.
  KW_ASSERT_OK_AND_ASSIGN(auto key_backup, db_->Query("SELECT * FROM keyward_field_keys"));
  std::map<int64_t, FieldRow> row_backup;
  for (const auto& c : originals) row_backup[c.id] = StoredRow(c.id);

  auto dry = CliJson({"tenant", "erase", "--schema", kSchema, "--db", url_, "--tenant", "acme",
                      "--dry-run", "--json"});
  EXPECT_EQ(dry["erased"], false);
  EXPECT_EQ(dry["data_keys"], 2);
  EXPECT_EQ(dry["rows"], 40);
  // Without --yes and without a terminal it refuses.
  auto refused = server_->Cli({"tenant", "erase", "--schema", kSchema, "--db", url_, "--tenant",
                               "acme"});
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("--yes"));
  // The app may not erase; the admin may.
  auto denied = server_->Cli({"tenant", "erase", "--schema", kSchema, "--db", url_, "--tenant",
                              "acme", "--yes"}, server_->app_config());
  EXPECT_NE(denied.exit_code, 0);
  auto erased = CliJson({"tenant", "erase", "--schema", kSchema, "--db", url_, "--tenant", "acme",
                         "--yes", "--json"});
  EXPECT_EQ(erased["erased"], true);

  // Restore the backup (keys and rows), and read with a fresh encryptor.
  KW_ASSERT_OK(db_->Execute("DELETE FROM keyward_field_keys").status());
  for (const auto& k : key_backup) {
    KW_ASSERT_OK(db_->Execute("INSERT INTO keyward_field_keys VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                              k).status());
  }
  auto after = Encryptor(server_->admin_config());
  ASSERT_NE(after, nullptr);
  int acme = 0, globex = 0;
  for (const auto& c : originals) {
    auto d = after->DecryptRow("customers", row_backup[c.id]);
    if (c.tenant == "acme") {
      ASSERT_FALSE(d.ok()) << "row " << c.id << " of the erased tenant decrypted";
      EXPECT_EQ(GetErrorCode(d.status()), ErrorCode::kTenantErased) << d.status();
      ++acme;
    } else {
      ASSERT_TRUE(d.ok()) << d.status();
      EXPECT_EQ(d->row["email"], FieldValue(c.email));
      ++globex;
    }
  }
  EXPECT_EQ(acme, 40);
  EXPECT_EQ(globex, 20);
  // No new key can be made for the erased tenant either.
  auto write = after->EncryptValue({"customers", "email", "999", "acme"}, std::string("x"));
  EXPECT_EQ(GetErrorCode(write.status()), ErrorCode::kTenantErased) << write.status();
  // A second erasure reports that it was already done.
  auto twice = CliJson({"tenant", "erase", "--schema", kSchema, "--db", url_, "--tenant", "acme",
                        "--yes", "--json"});
  EXPECT_EQ(twice["already_erased"], true);
}

INSTANTIATE_TEST_SUITE_P(Backends, FieldTablesE2eTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres), BackendName);

}  // namespace
}  // namespace keyward
