// What only the SQLite store does: durability across reopen, migrations,
// integrity checks and environment binding of the file.
#include <sys/stat.h>

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keystore/sqlite_key_store.h"
#include "keystore/key_store_fixture.h"
#include "keyward/errors.h"
#include "testing/status_matchers.h"
#include "testing/subprocess.h"

namespace keyward::keystore {
namespace {

using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;


TEST(SqliteKeyStoreTest, SurvivesReopenAndIsPrivate) {
  ::keyward::testing::TempDir dir;
  const std::string path = dir.File("keys.db");
  {
    KW_ASSERT_OK_AND_ASSIGN(auto store, SqliteKeyStore::Open(path, "dev"));
    KW_ASSERT_OK(store->CreateKey(SimpleTestKey("k")));
  }
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);
  KW_ASSERT_OK_AND_ASSIGN(auto store, SqliteKeyStore::Open(path, "dev"));
  KW_ASSERT_OK_AND_ASSIGN(Key key, store->GetKey("k"));
  EXPECT_EQ(key.versions[0].sealed_kek, "sealed");
  KW_ASSERT_OK_AND_ASSIGN(StoreInfo info, store->GetInfo());
  EXPECT_EQ(info.environment, "dev");
  EXPECT_EQ(info.schema_version, SqliteMigrations().back().number);
}

TEST(SqliteKeyStoreTest, BelongsToOneEnvironment) {
  ::keyward::testing::TempDir dir;
  const std::string path = dir.File("keys.db");
  { KW_ASSERT_OK_AND_ASSIGN(auto store, SqliteKeyStore::Open(path, "dev")); }
  auto other = SqliteKeyStore::Open(path, "production");
  EXPECT_THAT(other, StatusIs(absl::StatusCode::kFailedPrecondition,
                              HasSubstr("'dev'")));
  EXPECT_EQ(GetErrorCode(other.status()), ErrorCode::kEnvironmentMismatch);
}

TEST(SqliteKeyStoreTest, AppliesNewMigrationsOnceAndKeepsData) {
  ::keyward::testing::TempDir dir;
  const std::string path = dir.File("keys.db");
  std::vector<Migration> v1 = SqliteMigrations();
  {
    KW_ASSERT_OK_AND_ASSIGN(auto store,
                            SqliteKeyStore::OpenWithMigrations(path, "dev", v1));
    KW_ASSERT_OK(store->CreateKey(SimpleTestKey("k")));
  }
  std::vector<Migration> v2 = v1;
  v2.push_back({v1.back().number + 1, "test column",
                "ALTER TABLE keys ADD COLUMN test_note TEXT DEFAULT 'x';"});
  for (int i = 0; i < 2; ++i) {  // the second open applies nothing
    KW_ASSERT_OK_AND_ASSIGN(auto store,
                            SqliteKeyStore::OpenWithMigrations(path, "dev", v2));
    KW_ASSERT_OK_AND_ASSIGN(StoreInfo info, store->GetInfo());
    EXPECT_EQ(info.schema_version, v2.back().number);
    KW_EXPECT_OK(store->GetKey("k").status());
  }
  // A build that knows fewer migrations refuses the newer store.
  EXPECT_THAT(SqliteKeyStore::OpenWithMigrations(path, "dev", v1),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("upgrade keywardd")));
  // A failing migration leaves the store at its previous version.
  std::vector<Migration> broken = v2;
  broken.push_back({v2.back().number + 1, "broken", "THIS IS NOT SQL;"});
  EXPECT_FALSE(SqliteKeyStore::OpenWithMigrations(path, "dev", broken).ok());
  KW_ASSERT_OK_AND_ASSIGN(auto store,
                          SqliteKeyStore::OpenWithMigrations(path, "dev", v2));
  KW_ASSERT_OK_AND_ASSIGN(StoreInfo info, store->GetInfo());
  EXPECT_EQ(info.schema_version, v2.back().number);
}

TEST(SqliteKeyStoreTest, RefusesADamagedOrForeignFile) {
  ::keyward::testing::TempDir dir;
  const std::string junk = dir.File("junk.db");
  std::ofstream(junk) << std::string(8192, 'J');
  EXPECT_THAT(SqliteKeyStore::Open(junk, "dev"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("backup")));

  // Overwrite a whole table page of a real store (page 3).
  const std::string path = dir.File("keys.db");
  {
    KW_ASSERT_OK_AND_ASSIGN(auto store, SqliteKeyStore::Open(path, "dev"));
    for (int i = 0; i < 200; ++i) {
      KW_ASSERT_OK(store->CreateKey(SimpleTestKey("key/" + std::to_string(i))));
    }
  }
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(2 * 4096);
    f << std::string(4096, '\xAB');
  }
  EXPECT_THAT(SqliteKeyStore::Open(path, "dev"),
              StatusIs(absl::StatusCode::kDataLoss));
}

}  // namespace
}  // namespace keyward::keystore
