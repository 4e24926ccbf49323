// The `$N` scanner and the password redaction both backends rely on.
#include "appdb/sql_text.h"

#include "appdb/url.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace keyward::appdb {
namespace {

using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ScanPlaceholders, RewritesNumberedParametersAndFindsTheHighest) {
  KW_ASSERT_OK_AND_ASSIGN(
      Placeholders p,
      ScanPlaceholders("SELECT a FROM t WHERE b = $2 OR c = $1 OR d = $2"));
  EXPECT_EQ(p.sqlite_sql, "SELECT a FROM t WHERE b = ?2 OR c = ?1 OR d = ?2");
  EXPECT_EQ(p.max_index, 2);
}

TEST(ScanPlaceholders, LeavesLiteralsIdentifiersAndCommentsAlone) {
  const std::string sql =
      "SELECT '$1', 'it''s $2', \"col$3\", e'a\\'$4', x$5, $$ $6 $$, $tag$ $7 "
      "$tag$ "
      "-- $8\n /* $9 */ FROM t WHERE a = $10";
  KW_ASSERT_OK_AND_ASSIGN(Placeholders p, ScanPlaceholders(sql));
  EXPECT_EQ(p.max_index, 10);
  EXPECT_THAT(p.sqlite_sql, HasSubstr("a = ?10"));
  EXPECT_EQ(p.sqlite_sql.substr(0, p.sqlite_sql.size() - 3),
            sql.substr(0, sql.size() - 3));
}

TEST(ScanPlaceholders, NoParameters) {
  KW_ASSERT_OK_AND_ASSIGN(Placeholders p, ScanPlaceholders("SELECT 1"));
  EXPECT_EQ(p.max_index, 0);
  EXPECT_EQ(p.sqlite_sql, "SELECT 1");
}

TEST(ScanPlaceholders, RefusesDollarZeroAndHugeNumbers) {
  EXPECT_THAT(ScanPlaceholders("SELECT $0"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ScanPlaceholders("SELECT $1000"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SqlForMessage, CollapsesWhitespaceAndCuts) {
  EXPECT_EQ(SqlForMessage("  SELECT\n   a,\tb  FROM t  "),
            "SELECT a, b FROM t");
  const std::string long_sql = "SELECT " + std::string(200, 'x');
  const std::string shown = SqlForMessage(long_sql);
  EXPECT_LT(shown.size(), 90u);
  EXPECT_THAT(shown, HasSubstr("…"));
}

TEST(CheckParameterCount, NamesBothCounts) {
  KW_EXPECT_OK(CheckParameterCount("SELECT $1", 1, 1));
  EXPECT_THAT(
      CheckParameterCount("SELECT $1, $2", 2, 1),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("$1..$2 but 1")));
}

TEST(RedactUrlPassword, RemovesUserInfoAndQueryPasswords) {
  EXPECT_EQ(
      RedactUrlPassword("postgresql://app:s3cr%40t@db.example:5432/orders"),
      "postgresql://app@db.example:5432/orders");
  EXPECT_EQ(RedactUrlPassword(
                "postgres://db/orders?sslmode=require&password=hunter2&x=1"),
            "postgres://db/orders?sslmode=require&x=1");
  EXPECT_EQ(RedactUrlPassword("postgresql://db/orders?password=hunter2"),
            "postgresql://db/orders");
  EXPECT_EQ(RedactUrlPassword("postgresql://app@db/orders"),
            "postgresql://app@db/orders");
  EXPECT_EQ(RedactUrlPassword("sqlite:/var/lib/a@b/app.db"),
            "sqlite:/var/lib/a@b/app.db");
}

TEST(UrlPassword, FindsEitherForm) {
  EXPECT_EQ(UrlPassword("postgresql://app:pw1@db/x"), "pw1");
  EXPECT_EQ(UrlPassword("postgresql://db/x?password=pw2"), "pw2");
  EXPECT_EQ(UrlPassword("postgresql://app@db/x"), "");
  EXPECT_THAT(ScrubSecret("failed for pw1 at db", "pw1"),
              Not(HasSubstr("pw1")));
  EXPECT_EQ(ScrubSecret("unchanged", ""), "unchanged");
}

}  // namespace
}  // namespace keyward::appdb
