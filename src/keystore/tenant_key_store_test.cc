// The KeyStore contract for tenant keys, run against every implementation,
// and what erasure leaves in SQLite's files.
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keystore/sqlite_key_store.h"
#include "keystore/key_store_fixture.h"
#include "testing/status_matchers.h"
#include "testing/subprocess.h"

namespace keyward::keystore {
namespace {

using ::keyward::testing::StatusIs;

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

TenantKeyRecord Active(const std::string& key, const std::string& tenant,
                       const std::string& sealed) {
  TenantKeyRecord r;
  r.key_name = key;
  r.tenant = tenant;
  r.sealed = sealed;
  r.created = kT0;
  return r;
}

class TenantKeyStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto s = OpenTestStore(GetParam(), dir_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  ::keyward::testing::TempDir dir_;
  std::unique_ptr<KeyStore> store_;
};

TEST_P(TenantKeyStoreTest, PutOnceGetByKeyAndTenant) {
  KW_ASSERT_OK_AND_ASSIGN(auto none, store_->GetTenantKey("k", "acme"));
  EXPECT_FALSE(none.has_value());
  // Tenants are opaque bytes: NUL and non-UTF-8 included.
  const std::string binary("a\0\xff", 3);
  KW_ASSERT_OK(store_->PutTenantKey(Active("k", "acme", "sealed-acme")));
  KW_ASSERT_OK(store_->PutTenantKey(Active("k", binary, "sealed-binary")));
  KW_ASSERT_OK(store_->PutTenantKey(Active("other", "acme", "sealed-other")));
  KW_ASSERT_OK_AND_ASSIGN(auto got, store_->GetTenantKey("k", "acme"));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->key_name, "k");
  EXPECT_EQ(got->tenant, "acme");
  EXPECT_EQ(got->sealed, "sealed-acme");
  EXPECT_EQ(got->created, kT0);
  EXPECT_FALSE(got->is_erased());
  EXPECT_TRUE(got->erased_by.empty());
  KW_ASSERT_OK_AND_ASSIGN(auto b, store_->GetTenantKey("k", binary));
  EXPECT_EQ(b->sealed, "sealed-binary");
  KW_ASSERT_OK_AND_ASSIGN(auto prefix, store_->GetTenantKey("k", "a"));
  EXPECT_FALSE(prefix.has_value());

  // The loser of a race is told, and the winner's key stays.
  EXPECT_THAT(store_->PutTenantKey(Active("k", "acme", "sealed-loser")),
              StatusIs(absl::StatusCode::kAlreadyExists));
  KW_ASSERT_OK_AND_ASSIGN(auto still, store_->GetTenantKey("k", "acme"));
  EXPECT_EQ(still->sealed, "sealed-acme");

  // Only new active keys are put.
  TenantKeyRecord erased = Active("k", "new", "x");
  erased.erased = kT0;
  EXPECT_THAT(store_->PutTenantKey(erased), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->PutTenantKey(Active("k", "new", "")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->PutTenantKey(Active("k", "", "x")),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(TenantKeyStoreTest, ConcurrentPutsAgreeOnOneKey) {
  constexpr int kThreads = 8;
  std::vector<absl::Status> results(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      results[i] = store_->PutTenantKey(Active("k", "acme", absl::StrCat("sealed-", i)));
    });
  }
  for (auto& t : threads) t.join();
  int won = -1;
  for (int i = 0; i < kThreads; ++i) {
    if (results[i].ok()) {
      EXPECT_EQ(won, -1) << "two writers won";
      won = i;
    } else {
      EXPECT_THAT(results[i], StatusIs(absl::StatusCode::kAlreadyExists));
    }
  }
  ASSERT_NE(won, -1);
  KW_ASSERT_OK_AND_ASSIGN(auto got, store_->GetTenantKey("k", "acme"));
  EXPECT_EQ(got->sealed, absl::StrCat("sealed-", won));
}

TEST_P(TenantKeyStoreTest, EraseLeavesATombstoneThatNothingReplaces) {
  KW_ASSERT_OK(store_->PutTenantKey(Active("k", "acme", "sealed-acme")));
  KW_ASSERT_OK(store_->PutTenantKey(Active("k", "globex", "sealed-globex")));
  const absl::Time t1 = kT0 + absl::Hours(1);
  KW_ASSERT_OK_AND_ASSIGN(auto before, store_->EraseTenantKey("k", "acme", t1, "spiffe://x/admin"));
  ASSERT_TRUE(before.has_value());
  EXPECT_FALSE(before->is_erased());
  EXPECT_TRUE(before->sealed.empty());  // not handed out again
  EXPECT_EQ(before->created, kT0);

  KW_ASSERT_OK_AND_ASSIGN(auto after, store_->GetTenantKey("k", "acme"));
  ASSERT_TRUE(after.has_value());
  EXPECT_TRUE(after->is_erased());
  EXPECT_TRUE(after->sealed.empty());
  EXPECT_EQ(after->erased, t1);
  EXPECT_EQ(after->erased_by, "spiffe://x/admin");
  EXPECT_EQ(after->created, kT0);
  // No new key for an erased tenant.
  EXPECT_THAT(store_->PutTenantKey(Active("k", "acme", "sealed-again")),
              StatusIs(absl::StatusCode::kAlreadyExists));
  // A second erasure changes nothing: the first one stands.
  KW_ASSERT_OK_AND_ASSIGN(auto again,
                          store_->EraseTenantKey("k", "acme", t1 + absl::Hours(1), "other"));
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->is_erased());
  EXPECT_EQ(again->erased, t1);
  EXPECT_EQ(again->erased_by, "spiffe://x/admin");
  KW_ASSERT_OK_AND_ASSIGN(auto same, store_->GetTenantKey("k", "acme"));
  EXPECT_EQ(same->erased, t1);
  EXPECT_EQ(same->erased_by, "spiffe://x/admin");
  // Other tenants, and the same tenant under other keys, are untouched.
  KW_ASSERT_OK_AND_ASSIGN(auto globex, store_->GetTenantKey("k", "globex"));
  EXPECT_EQ(globex->sealed, "sealed-globex");
  EXPECT_FALSE(globex->is_erased());
  KW_ASSERT_OK(store_->PutTenantKey(Active("other", "acme", "sealed-other")));
}

TEST_P(TenantKeyStoreTest, ErasingATenantThatNeverHadAKeyBlocksItForGood) {
  KW_ASSERT_OK_AND_ASSIGN(auto before, store_->EraseTenantKey("k", "ghost", kT0, "admin"));
  EXPECT_FALSE(before.has_value());
  KW_ASSERT_OK_AND_ASSIGN(auto tomb, store_->GetTenantKey("k", "ghost"));
  ASSERT_TRUE(tomb.has_value());
  EXPECT_TRUE(tomb->is_erased());
  EXPECT_FALSE(tomb->created.has_value());
  EXPECT_EQ(tomb->erased_by, "admin");
  EXPECT_THAT(store_->PutTenantKey(Active("k", "ghost", "sealed")),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

INSTANTIATE_TEST_SUITE_P(Backends, TenantKeyStoreTest, ::testing::Values("memory", "sqlite", "postgres"));

bool FileHolds(const std::string& path, absl::string_view needle) {
  const std::string bytes = ::keyward::testing::ReadFileOrDie(path);
  return absl::string_view(bytes).find(needle) != absl::string_view::npos;
}

// What an attacker with a copy of the store's files after the erasure
// would search for: the sealed tenant key's bytes.
TEST(SqliteTenantKeysTest, AnErasedKeyIsGoneFromTheDatabaseFilesAfterScrub) {
  ::keyward::testing::TempDir dir;
  const std::string path = dir.File("keys.db");
  KW_ASSERT_OK_AND_ASSIGN(auto store, SqliteKeyStore::Open(path, "dev"));
  // High-entropy, unmistakable: no page of an empty store holds it by chance.
  const std::string erased_key = "\x01SEALED-TENANT-KEY-7f3a9c2e41b8d6052c9e\x02";
  const std::string kept_key = "\x01SEALED-TENANT-KEY-0b6e1d94c3a7f8e25d10\x02";
  KW_ASSERT_OK(store->PutTenantKey(Active("k", "acme", erased_key)));
  KW_ASSERT_OK(store->PutTenantKey(Active("k", "globex", kept_key)));
  // Before the erasure the bytes are on disk (else the test proves nothing).
  ASSERT_TRUE(FileHolds(path + "-wal", erased_key) || FileHolds(path, erased_key));
  KW_ASSERT_OK(store->Scrub());
  ASSERT_TRUE(FileHolds(path, erased_key));  // checkpointed into the database

  KW_ASSERT_OK(store->EraseTenantKey("k", "acme", kT0, "admin").status());
  KW_ASSERT_OK(store->Scrub());
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    const std::string file = path + suffix;
    if (::access(file.c_str(), F_OK) != 0) continue;
    EXPECT_FALSE(FileHolds(file, erased_key)) << file;
    // A fragment is enough to be a leak.
    EXPECT_FALSE(FileHolds(file, "7f3a9c2e41b8d6052c9e")) << file;
  }
  EXPECT_TRUE(FileHolds(path, kept_key));  // the other tenant's key stays
  // And after closing, from the files alone.
  store.reset();
  EXPECT_FALSE(FileHolds(path, "7f3a9c2e41b8d6052c9e"));
  KW_ASSERT_OK_AND_ASSIGN(auto reopened, SqliteKeyStore::Open(path, "dev"));
  KW_ASSERT_OK_AND_ASSIGN(auto tomb, reopened->GetTenantKey("k", "acme"));
  ASSERT_TRUE(tomb.has_value());
  EXPECT_TRUE(tomb->is_erased());
  KW_ASSERT_OK_AND_ASSIGN(auto kept, reopened->GetTenantKey("k", "globex"));
  EXPECT_EQ(kept->sealed, kept_key);
}

}  // namespace
}  // namespace keyward::keystore
