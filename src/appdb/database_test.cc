// The same cases against SQLite (a temporary file) and PostgreSQL (a
// throwaway server, testing/postgres_server.h): the field code and the
// scanner are written once against Database, so both must behave alike.
#include "appdb/database.h"

#include <sys/stat.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/dev_server.h"
#include "testing/postgres_server.h"
#include "testing/status_matchers.h"
#include "testing/subprocess.h"

namespace keyward::appdb {
namespace {

using ::keyward::testing::IsOkAndHolds;
using ::keyward::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

struct SqliteBackend {
  static constexpr Dialect kDialect = Dialect::kSqlite;
  static absl::StatusOr<std::string> NewDatabaseUrl(
      const keyward::testing::TempDir& dir) {
    static std::atomic<int> n{0};
    return absl::StrCat("sqlite:", dir.File(absl::StrCat("app", ++n, ".db")));
  }
};

struct PostgresBackend {
  static constexpr Dialect kDialect = Dialect::kPostgres;
  static absl::StatusOr<std::string> NewDatabaseUrl(
      const keyward::testing::TempDir&) {
    static std::atomic<int> n{0};
    auto server = keyward::testing::SharedPostgresServer();
    if (!server.ok()) return server.status();
    return (*server)->CreateDatabase(absl::StrCat("appdb_", ++n));
  }
};

template <typename Backend>
class DatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KW_ASSERT_OK_AND_ASSIGN(url_, Backend::NewDatabaseUrl(dir_));
    KW_ASSERT_OK_AND_ASSIGN(db_, Database::Open(url_, /*create=*/true));
    ASSERT_EQ(db_->dialect(), Backend::kDialect);
  }
  // A table with a column of each kind.
  void CreateKinds() {
    KW_ASSERT_OK(
        db_
            ->Execute(absl::StrCat(
                "CREATE TABLE kinds (id INTEGER PRIMARY KEY, i BIGINT, "
                "r DOUBLE PRECISION, s TEXT, b ",
                db_->BlobType(), ")"))
            .status());
  }
  int64_t Count(const std::string& table) {
    auto rows = db_->Query("SELECT count(*) FROM " + table);
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() ? std::get<int64_t>((*rows)[0][0]) : -1;
  }

  keyward::testing::TempDir dir_;
  std::string url_;
  std::unique_ptr<Database> db_;
};

using Backends = ::testing::Types<SqliteBackend, PostgresBackend>;
class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return T::kDialect == Dialect::kSqlite ? "Sqlite" : "Postgres";
  }
};
TYPED_TEST_SUITE(DatabaseTest, Backends, BackendNames);

TYPED_TEST(DatabaseTest, RoundTripsEveryValueKind) {
  this->CreateKinds();
  std::string nul_bytes("a\0b\0\0c", 6);
  std::string big(1 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<char>((i * 131) ^ (i >> 7));
  const std::vector<std::vector<Value>> rows = {
      {int64_t{1}, int64_t{0}, 0.0, std::string(), Blob{}},
      {int64_t{2}, std::numeric_limits<int64_t>::max(), 3.25,
       std::string("héllo ✓"), Blob{nul_bytes}},
      {int64_t{3}, std::numeric_limits<int64_t>::min(), -1.5e300,
       std::string("'; DROP --"), Blob{big}},
      {int64_t{4}, std::monostate{}, std::monostate{}, std::monostate{},
       std::monostate{}},
      {int64_t{5}, int64_t{-1}, 0.1, std::string(1000, 'x'),
       Blob{std::string(1, '\x11')}},
  };
  for (const auto& row : rows) {
    KW_ASSERT_OK(this->db_->Execute(
        "INSERT INTO kinds (id, i, r, s, b) VALUES ($1, $2, $3, $4, $5)", row));
  }
  KW_ASSERT_OK_AND_ASSIGN(
      auto got,
      this->db_->Query("SELECT id, i, r, s, b FROM kinds ORDER BY id"));
  ASSERT_EQ(got.size(), rows.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t c = 0; c < rows[r].size(); ++c) {
      EXPECT_EQ(got[r][c], rows[r][c])
          << "row " << r << " column " << c << ": got "
          << ValueTypeName(got[r][c]) << ", want " << ValueTypeName(rows[r][c]);
    }
  }
  // Empty text and empty blob are values, not NULL.
  EXPECT_TRUE(std::holds_alternative<std::string>(got[0][3]));
  EXPECT_TRUE(std::holds_alternative<Blob>(got[0][4]));
  EXPECT_TRUE(std::holds_alternative<std::monostate>(got[3][4]));
}

TYPED_TEST(DatabaseTest, ParametersAreNumberedAndReusable) {
  KW_ASSERT_OK(
      this->db_
          ->Execute("CREATE TABLE p (id INTEGER PRIMARY KEY, a TEXT, b TEXT)")
          .status());
  // $2 before $1, and $2 twice.
  KW_ASSERT_OK(
      this->db_->Execute("INSERT INTO p (b, a, id) VALUES ($2, $2, $1)",
                         {int64_t{7}, std::string("same")}));
  KW_ASSERT_OK_AND_ASSIGN(
      auto rows, this->db_->Query("SELECT id FROM p WHERE a = $1 AND b = $1",
                                  {std::string("same")}));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], Value(int64_t{7}));
  EXPECT_THAT(
      this->db_->Query("SELECT id FROM p WHERE a = $1 AND b = $2",
                       {std::string("x")}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("$1..$2 but 1")));
  EXPECT_THAT(
      this->db_->Query("SELECT id FROM p", {std::string("x")}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no parameters")));
}

TYPED_TEST(DatabaseTest, ExecuteCountsChangedRows) {
  KW_ASSERT_OK(
      this->db_->Execute("CREATE TABLE c (id INTEGER PRIMARY KEY, v INTEGER)")
          .status());
  for (int64_t i = 1; i <= 5; ++i) {
    EXPECT_THAT(
        this->db_->Execute("INSERT INTO c (id, v) VALUES ($1, $2)", {i, i % 2}),
        IsOkAndHolds(1u));
  }
  EXPECT_THAT(
      this->db_->Execute("UPDATE c SET v = 9 WHERE v = $1", {int64_t{1}}),
      IsOkAndHolds(3u));
  EXPECT_THAT(this->db_->Execute("CREATE TABLE d (id INTEGER)"),
              IsOkAndHolds(0u));
  EXPECT_THAT(this->db_->Execute("DELETE FROM c WHERE id > $1", {int64_t{10}}),
              IsOkAndHolds(0u));
}

TYPED_TEST(DatabaseTest, RollbackUndoesAndCommitKeeps) {
  KW_ASSERT_OK(
      this->db_->Execute("CREATE TABLE t (id INTEGER PRIMARY KEY)").status());
  KW_ASSERT_OK(this->db_->Begin());
  KW_ASSERT_OK(this->db_->Execute("INSERT INTO t (id) VALUES (1)").status());
  EXPECT_EQ(this->Count("t"), 1);
  KW_ASSERT_OK(this->db_->Rollback());
  EXPECT_EQ(this->Count("t"), 0);
  KW_ASSERT_OK(this->db_->Begin());
  EXPECT_THAT(this->db_->Begin(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  KW_ASSERT_OK(this->db_->Execute("INSERT INTO t (id) VALUES (2)").status());
  KW_ASSERT_OK(this->db_->Commit());
  EXPECT_EQ(this->Count("t"), 1);
  EXPECT_THAT(this->db_->Commit(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(this->db_->Rollback(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TYPED_TEST(DatabaseTest, InTransactionRollsBackOnError) {
  Database& db = *this->db_;
  KW_ASSERT_OK(db.Execute("CREATE TABLE t (id INTEGER PRIMARY KEY)").status());
  absl::Status status = InTransaction(db, [&]() -> absl::Status {
    if (auto s = db.Execute("INSERT INTO t (id) VALUES (1)"); !s.ok())
      return s.status();
    return absl::AbortedError("body gave up");
  });
  EXPECT_THAT(status,
              StatusIs(absl::StatusCode::kAborted, HasSubstr("body gave up")));
  EXPECT_EQ(this->Count("t"), 0);
  // A failing statement inside: its error comes out, the earlier insert is
  // gone.
  status = InTransaction(db, [&]() -> absl::Status {
    if (auto s = db.Execute("INSERT INTO t (id) VALUES (2)"); !s.ok())
      return s.status();
    return db.Execute("INSERT INTO t (id) VALUES (2)").status();
  });
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(this->Count("t"), 0);
  KW_EXPECT_OK(InTransaction(db, [&] {
    return db.Execute("INSERT INTO t (id) VALUES (3)").status();
  }));
  EXPECT_EQ(this->Count("t"), 1);
  // The connection is usable afterwards: no transaction left open.
  KW_EXPECT_OK(db.Begin());
  KW_EXPECT_OK(db.Rollback());
}

TYPED_TEST(DatabaseTest, CommitOfAFailedTransactionReportsIt) {
  Database& db = *this->db_;
  KW_ASSERT_OK(db.Execute("CREATE TABLE t (id INTEGER PRIMARY KEY)").status());
  KW_ASSERT_OK(db.Begin());
  KW_ASSERT_OK(db.Execute("INSERT INTO t (id) VALUES (1)").status());
  EXPECT_FALSE(db.Execute("INSERT INTO t (id) VALUES (1)").ok());
  // PostgreSQL aborts the transaction; SQLite keeps the statements that
  // succeeded.  Either way Commit must not claim a success that did not
  // happen.
  const absl::Status commit = db.Commit();
  if (db.dialect() == Dialect::kPostgres) {
    EXPECT_THAT(commit, StatusIs(absl::StatusCode::kAborted));
    EXPECT_EQ(this->Count("t"), 0);
  } else {
    KW_EXPECT_OK(commit);
    EXPECT_EQ(this->Count("t"), 1);
  }
}

TYPED_TEST(DatabaseTest, ListsTablesAndColumns) {
  Database& db = *this->db_;
  KW_ASSERT_OK(
      db.Execute("CREATE TABLE zeta (id INTEGER PRIMARY KEY, note TEXT)")
          .status());
  KW_ASSERT_OK(
      db.Execute(absl::StrCat("CREATE TABLE alpha (code TEXT, n BIGINT, data ",
                              db.BlobType(), ", PRIMARY KEY (code))"))
          .status());
  KW_ASSERT_OK(db.Execute("CREATE VIEW v AS SELECT id FROM zeta").status());
  EXPECT_THAT(db.ListTables(), IsOkAndHolds(ElementsAre("alpha", "zeta")));
  KW_ASSERT_OK_AND_ASSIGN(auto cols, db.ListColumns("alpha"));
  ASSERT_EQ(cols.size(), 3u);
  EXPECT_EQ(cols[0].name, "code");
  EXPECT_EQ(cols[0].declared_type, "text");
  EXPECT_TRUE(cols[0].primary_key);
  EXPECT_EQ(cols[1].name, "n");
  EXPECT_EQ(cols[1].declared_type, "bigint");
  EXPECT_FALSE(cols[1].primary_key);
  EXPECT_EQ(cols[2].declared_type,
            db.dialect() == Dialect::kSqlite ? "blob" : "bytea");
  KW_ASSERT_OK_AND_ASSIGN(cols, db.ListColumns("zeta"));
  ASSERT_EQ(cols.size(), 2u);
  EXPECT_TRUE(cols[0].primary_key);
  EXPECT_EQ(cols[0].declared_type, "integer");
  EXPECT_THAT(db.ListColumns("nope"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
}

TYPED_TEST(DatabaseTest, OnConflictDoNothing) {
  Database& db = *this->db_;
  KW_ASSERT_OK(
      db.Execute("CREATE TABLE u (id INTEGER PRIMARY KEY, v TEXT)").status());
  const std::string insert =
      "INSERT INTO u (id, v) VALUES ($1, $2) ON CONFLICT DO NOTHING";
  EXPECT_THAT(db.Execute(insert, {int64_t{1}, std::string("a")}),
              IsOkAndHolds(1u));
  EXPECT_THAT(db.Execute(insert, {int64_t{1}, std::string("b")}),
              IsOkAndHolds(0u));
  KW_ASSERT_OK_AND_ASSIGN(auto rows, db.Query("SELECT v FROM u"));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], Value(std::string("a")));
  EXPECT_THAT(db.Execute("INSERT INTO u (id, v) VALUES ($1, $2)",
                         {int64_t{1}, std::string("c")}),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

TYPED_TEST(DatabaseTest, BadSqlIsAnErrorThatQuotesTheStatementButNoValues) {
  Database& db = *this->db_;
  KW_ASSERT_OK(
      db.Execute("CREATE TABLE s (id INTEGER PRIMARY KEY, v TEXT UNIQUE)")
          .status());
  EXPECT_THAT(db.Query("SELEC id FROM s"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("SELEC id FROM s")));
  EXPECT_THAT(
      db.Query("SELECT id FROM missing_table"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("missing_table")));
  EXPECT_THAT(
      db.Execute(
          "INSERT INTO s (id) VALUES (1); INSERT INTO s (id) VALUES (2)"),
      StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(this->Count("s"), 0);
  const std::string secret = "tok_SECRET_4242";
  KW_ASSERT_OK(
      db.Execute("INSERT INTO s (id, v) VALUES ($1, $2)", {int64_t{1}, secret})
          .status());
  auto dup =
      db.Execute("INSERT INTO s (id, v) VALUES ($1, $2)", {int64_t{2}, secret});
  EXPECT_THAT(dup, StatusIs(absl::StatusCode::kAlreadyExists,
                            Not(HasSubstr("SECRET"))));
  // PostgreSQL rejects text in an integer comparison and quotes the input.
  auto typed = db.Query("SELECT id FROM s WHERE id = $1", {secret});
  if (!typed.ok()) {
    EXPECT_THAT(typed.status().message(), Not(HasSubstr("SECRET")))
        << typed.status();
  }
}

TYPED_TEST(DatabaseTest, StatementCacheSurvivesLoopsEvictionAndSchemaChanges) {
  Database& db = *this->db_;
  KW_ASSERT_OK(
      db.Execute("CREATE TABLE l (id INTEGER PRIMARY KEY, v BIGINT)").status());
  KW_ASSERT_OK(db.Begin());
  for (int64_t i = 0; i < 5000; ++i) {
    KW_ASSERT_OK(db.Execute("INSERT INTO l (id, v) VALUES ($1, $2)", {i, i * 2})
                     .status());
  }
  KW_ASSERT_OK(db.Commit());
  // More distinct statements than the cache holds, then the first again.
  for (int i = 0; i < 150; ++i) {
    KW_ASSERT_OK(db.Query(absl::StrCat("SELECT v FROM l WHERE id = $1 AND ", i,
                                       " = ", i),
                          {int64_t{3}})
                     .status());
  }
  KW_ASSERT_OK_AND_ASSIGN(
      auto rows,
      db.Query("SELECT v FROM l WHERE id = $1 AND 0 = 0", {int64_t{3}}));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], Value(int64_t{6}));
  // The table changes shape under a cached SELECT *.
  KW_ASSERT_OK_AND_ASSIGN(
      rows, db.Query("SELECT * FROM l WHERE id = $1", {int64_t{1}}));
  EXPECT_EQ(rows[0].size(), 2u);
  KW_ASSERT_OK(db.Execute("ALTER TABLE l ADD COLUMN extra TEXT").status());
  KW_ASSERT_OK_AND_ASSIGN(
      rows, db.Query("SELECT * FROM l WHERE id = $1", {int64_t{1}}));
  EXPECT_EQ(rows[0].size(), 3u);
}

TYPED_TEST(DatabaseTest, RedactedUrlHasNoPassword) {
  EXPECT_THAT(this->db_->RedactedUrl(), Not(HasSubstr(":@")));
  EXPECT_EQ(this->db_->RedactedUrl(),
            this->url_);  // the fixtures use no password
}

TEST(DatabaseOpen, RefusesOtherUrlsShowingBothForms) {
  auto db = Database::Open("mysql://app:hunter2@db/orders");
  EXPECT_THAT(
      db, StatusIs(absl::StatusCode::kInvalidArgument,
                   AllOf(HasSubstr("sqlite:PATH"), HasSubstr("postgresql://"),
                         Not(HasSubstr("hunter2")))));
  EXPECT_THAT(Database::Open("/var/lib/app.db"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Database::Open("sqlite:"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(DatabaseOpen, MissingSqliteFileIsNotFoundUnlessCreating) {
  keyward::testing::TempDir dir;
  const std::string path = dir.File("absent.db");
  EXPECT_THAT(Database::Open("sqlite:" + path),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(path)));
  struct stat st;
  EXPECT_NE(::stat(path.c_str(), &st), 0)
      << "opening without create made the file";
  KW_ASSERT_OK_AND_ASSIGN(auto db,
                          Database::Open("sqlite://" + path, /*create=*/true));
  EXPECT_EQ(db->RedactedUrl(), "sqlite:" + path);
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  KW_EXPECT_OK(Database::Open("sqlite:" + path).status());
}

TEST(DatabaseOpen, AFileThatIsNotADatabaseIsDataLoss) {
  keyward::testing::TempDir dir;
  keyward::testing::WriteFileOrDie(dir.File("x.db"), std::string(4096, 'x'));
  EXPECT_THAT(Database::Open("sqlite:" + dir.File("x.db")),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("x.db")));
}

TEST(DatabaseOpen, UnreachablePostgresIsUnavailableWithoutThePassword) {
  const int port = keyward::testing::FreePort();  // nothing listens there
  auto db = Database::Open(
      absl::StrCat("postgresql://app:hunter2-pw@127.0.0.1:", port,
                   "/orders?connect_timeout=3"));
  EXPECT_THAT(db,
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr("127.0.0.1"), Not(HasSubstr("hunter2")),
                             Not(HasSubstr("\n")))));
}

TEST(DatabaseOpen, MissingPostgresDatabaseIsNotFound) {
  KW_ASSERT_OK_AND_ASSIGN(auto* server,
                          keyward::testing::SharedPostgresServer());
  EXPECT_THAT(Database::Open(server->Url("no_such_db")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no_such_db")));
}

TEST(Database, QuoteIdentifierAndTypeNames) {
  EXPECT_EQ(Database::QuoteIdentifier("plain"), "\"plain\"");
  EXPECT_EQ(Database::QuoteIdentifier("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(ValueTypeName(Value{}), "NULL");
  EXPECT_EQ(ValueTypeName(Value{int64_t{1}}), "integer");
  EXPECT_EQ(ValueTypeName(Value{1.0}), "real");
  EXPECT_EQ(ValueTypeName(Value{std::string()}), "text");
  EXPECT_EQ(ValueTypeName(Value{Blob{}}), "blob");
}

}  // namespace
}  // namespace keyward::appdb
