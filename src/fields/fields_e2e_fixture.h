// The fixture of the field-level encryption end-to-end tests: keywardd
// from `keyward dev init` with the key `customers`, and the example table
// customers(id, tenant_id, email, card_number, ssn, notes) in a real
// database: a SQLite file, or a database of a throwaway PostgreSQL server
// shared by the test binary.  Every test runs on both.
#ifndef KEYWARD_FIELDS_FIELDS_E2E_FIXTURE_H_
#define KEYWARD_FIELDS_FIELDS_E2E_FIXTURE_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "appdb/database.h"
#include "keyward/field_encryptor.h"
#include "testing/e2e_fixture.h"
#include "testing/postgres_server.h"
#include "testing/status_matchers.h"

namespace keyward {

enum class Backend { kSqlite, kPostgres };

inline std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
}

struct Customer {
  int64_t id;
  std::string tenant, email, card, ssn, notes;
};

class FieldsE2eTest : public E2eTest, public ::testing::WithParamInterface<Backend> {
 protected:
  static void TearDownTestSuite() { postgres().reset(); }
  static std::unique_ptr<testing::PostgresServer>& postgres() {
    static std::unique_ptr<testing::PostgresServer> server;
    return server;
  }

  void SetUp() override {
    E2eTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_EQ(server_->Cli({"key", "create", "customers"}).exit_code, 0);
    if (GetParam() == Backend::kSqlite) {
      url_ = absl::StrCat("sqlite:", server_->File("app.db"));
    } else {
      if (!postgres()) {
        auto pg = testing::PostgresServer::Start();
        ASSERT_TRUE(pg.ok()) << pg.status();
        postgres() = std::move(*pg);
      }
      static std::atomic<int> n{0};
      auto url = postgres()->CreateDatabase(absl::StrCat("fields_", ::getpid(), "_", n++));
      ASSERT_TRUE(url.ok()) << url.status();
      url_ = *url;
    }
    auto db = appdb::Database::Open(url_, /*create=*/true);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    const char* id_type = GetParam() == Backend::kSqlite ? "INTEGER" : "BIGINT";
    KW_ASSERT_OK(db_->Execute(absl::StrCat("CREATE TABLE customers (id ", id_type,
                                           " PRIMARY KEY, tenant_id TEXT, email TEXT, "
                                           "card_number TEXT, ssn TEXT, notes TEXT)"))
                     .status());
    auto schema = FieldSchema::Load("examples/fields/customers.yaml");
    ASSERT_TRUE(schema.ok()) << schema.status();
    schema_ = *schema;
  }

  std::shared_ptr<FieldEncryptor> Encryptor(const std::string& config,
                                            FieldEncryptor::Options options = {}) {
    auto o = LoadClientConfig(config);
    EXPECT_TRUE(o.ok()) << o.status();
    auto data = DataClient::Connect(*o);
    EXPECT_TRUE(data.ok()) << data.status();
    auto enc = FieldEncryptor::Create(schema_, *data, url_, options);
    EXPECT_TRUE(enc.ok()) << enc.status();
    return enc.ok() ? *enc : nullptr;
  }

  static Customer Sample(int64_t id, const std::string& tenant) {
    return Customer{id, tenant, absl::StrCat("user", id, "@", tenant, ".example"),
                    absl::StrCat("4111 1111 1111 ", 1000 + id % 9000),
                    absl::StrCat("123-45-", 1000 + id % 9000), absl::StrCat("note ", id)};
  }

  void InsertPlain(const std::vector<Customer>& rows) {
    KW_ASSERT_OK(appdb::InTransaction(*db_, [&]() -> absl::Status {
      for (const auto& c : rows) {
        absl::StatusOr<uint64_t> n = db_->Execute(
            "INSERT INTO customers (id, tenant_id, email, card_number, ssn, notes) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            {c.id, c.tenant, c.email, c.card, c.ssn, c.notes});
        if (!n.ok()) return n.status();
      }
      return absl::OkStatus();
    }));
  }

  FieldRow StoredRow(int64_t id) {
    auto rows = db_->Query(
        "SELECT id, tenant_id, email, card_number, ssn, notes FROM customers WHERE id = $1", {id});
    EXPECT_TRUE(rows.ok() && rows->size() == 1) << id;
    FieldRow row;
    if (!rows.ok() || rows->size() != 1) return row;
    const char* names[] = {"id", "tenant_id", "email", "card_number", "ssn", "notes"};
    for (int i = 0; i < 6; ++i) {
      const appdb::Value& v = (*rows)[0][i];
      if (const int64_t* n = std::get_if<int64_t>(&v)) row[names[i]] = *n;
      if (const std::string* s = std::get_if<std::string>(&v)) row[names[i]] = *s;
    }
    return row;
  }

  static FieldRow RowOf(const Customer& c) {
    return FieldRow{{"id", c.id},          {"tenant_id", c.tenant}, {"email", c.email},
                    {"card_number", c.card}, {"ssn", c.ssn},        {"notes", c.notes}};
  }

  std::string url_;
  std::unique_ptr<appdb::Database> db_;
  std::shared_ptr<const FieldSchema> schema_;
};

}  // namespace keyward

#endif  // KEYWARD_FIELDS_FIELDS_E2E_FIXTURE_H_
