// What only the PostgreSQL store does: several replicas on one database
// (compare-and-swap across stores, the data key limit, leases, change
// notifications), outages, migrations and the store's environment.
#include "keystore/postgres_key_store.h"

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "appdb/postgres_database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keystore/postgres_change_feed.h"
#include "keystore/key_store_fixture.h"
#include "keyward/errors.h"
#include "testing/dev_server.h"
#include "testing/postgres_server.h"
#include "testing/status_matchers.h"

namespace keyward::keystore {
namespace {

using ::keyward::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr absl::Duration kPatience = absl::Seconds(15);

// Two keywardd replicas: two stores on one fresh database.
class TwoReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KW_ASSERT_OK_AND_ASSIGN(url_, FreshPostgresDatabase());
    KW_ASSERT_OK_AND_ASSIGN(a_, PostgresKeyStore::Open(url_, "dev"));
    KW_ASSERT_OK_AND_ASSIGN(b_, PostgresKeyStore::Open(url_, "dev"));
  }
  KeyStore& Replica(int i) { return i % 2 == 0 ? *a_ : *b_; }

  std::string url_;
  std::unique_ptr<PostgresKeyStore> a_, b_;
};

TEST_F(TwoReplicasTest, ConcurrentUpdatesOfOneRevisionHaveExactlyOneWinner) {
  KW_ASSERT_OK(a_->CreateKey(SimpleTestKey("k")));
  constexpr int kRounds = 10;
  constexpr int kWriters = 8;
  for (int round = 0; round < kRounds; ++round) {
    KW_ASSERT_OK_AND_ASSIGN(const Key read, b_->GetKey("k"));
    std::vector<absl::Status> results(kWriters);
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        Key mine = read;
        mine.labels["writer"] = absl::StrCat(w);
        results[w] = Replica(w).UpdateKey(mine);
      });
    }
    for (auto& t : writers) t.join();
    int winner = -1;
    for (int w = 0; w < kWriters; ++w) {
      if (results[w].ok()) {
        EXPECT_EQ(winner, -1) << "two writers won round " << round;
        winner = w;
      } else {
        EXPECT_THAT(results[w], StatusIs(absl::StatusCode::kAborted)) << results[w];
      }
    }
    ASSERT_NE(winner, -1) << "round " << round;
    KW_ASSERT_OK_AND_ASSIGN(Key now, a_->GetKey("k"));
    EXPECT_EQ(now.revision, read.revision + 1);
    EXPECT_EQ(now.labels["writer"], absl::StrCat(winner));
  }
}

TEST_F(TwoReplicasTest, DataKeyReservationsFromBothNeverPassTheLimit) {
  KW_ASSERT_OK(a_->CreateKey(SimpleTestKey("k")));
  constexpr uint64_t kLimit = 100;
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (;;) {
        auto count = Replica(t).AddDataKeysIssued("k", 1, 3, kLimit);
        if (!count.ok()) {
          EXPECT_THAT(count, StatusIs(absl::StatusCode::kResourceExhausted));
          return;
        }
        EXPECT_LE(*count, kLimit);
        ++granted;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), 33);  // 33 * 3 = 99; a 34th would make 102
  KW_ASSERT_OK_AND_ASSIGN(Key key, b_->GetKey("k"));
  EXPECT_EQ(key.versions[0].usage.data_keys_issued, 99u);
  // Giving back never goes below zero; the limit does not apply to it.
  EXPECT_THAT(a_->AddDataKeysIssued("k", 1, -9, 0), ::keyward::testing::IsOkAndHolds(90u));
  EXPECT_THAT(a_->AddDataKeysIssued("k", 1, -1000, 0), ::keyward::testing::IsOkAndHolds(0u));
  EXPECT_THAT(a_->AddDataKeysIssued("k", 1, 1, ~uint64_t{0}),
              ::keyward::testing::IsOkAndHolds(1u));
  EXPECT_THAT(a_->AddDataKeysIssued("k", 2, 1, kLimit), StatusIs(absl::StatusCode::kNotFound));
}

// A break-glass grant's count is exact across replicas, and a revocation
// through one is seen by the other's next use (the check is in the store).
TEST_F(TwoReplicasTest, BreakGlassUsesFromBothNeverPassTheCountAndRevocationIsShared) {
  policy::BreakGlassGrant g;
  g.id = "bg-2";
  g.requester = "spiffe://x/oncall";
  g.key = "restricted/a";
  g.quorum = 1;
  g.duration = absl::Hours(1);
  g.max_decrypts = 40;
  g.requested = absl::Now();
  g.request_expires = g.requested + absl::Hours(24);
  g.activated = g.requested;
  KW_ASSERT_OK(a_->CreateBreakGlass(g));
  auto use = [](policy::BreakGlassGrant& s) {
    if (s.StateAt(absl::Now()) != policy::BreakGlassGrant::State::kActive) {
      return absl::FailedPreconditionError("not active");
    }
    ++s.decrypts;
    return absl::OkStatus();
  };
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      while (Replica(t).UpdateBreakGlass("bg-2", use).ok()) ++granted;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), 40);

  g.id = "bg-3";
  KW_ASSERT_OK(a_->CreateBreakGlass(g));
  KW_ASSERT_OK(b_->UpdateBreakGlass("bg-3", use).status());
  KW_ASSERT_OK(a_->UpdateBreakGlass("bg-3", [](policy::BreakGlassGrant& s) {
                   s.revoked = absl::Now();
                   return absl::OkStatus();
                 }).status());
  EXPECT_THAT(b_->UpdateBreakGlass("bg-3", use), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(TwoReplicasTest, ALeaseHasOneHolderAndItsTokenGrowsWithEachNewHolder) {
  KW_ASSERT_OK_AND_ASSIGN(Lease first, a_->AcquireLease("rotation", "replica-a", absl::Minutes(1)));
  EXPECT_EQ(first.holder, "replica-a");
  EXPECT_THAT(b_->AcquireLease("rotation", "replica-b", absl::Minutes(1)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("held by replica-a")));
  // A renewal keeps the token and moves the expiry.
  KW_ASSERT_OK_AND_ASSIGN(Lease renewed,
                          a_->AcquireLease("rotation", "replica-a", absl::Minutes(2)));
  EXPECT_EQ(renewed.fencing_token, first.fencing_token);
  EXPECT_GT(renewed.expires, first.expires);
  // Another holder's release changes nothing.
  KW_ASSERT_OK(b_->ReleaseLease("rotation", "replica-b"));
  EXPECT_THAT(b_->AcquireLease("rotation", "replica-b", absl::Minutes(1)),
              StatusIs(absl::StatusCode::kFailedPrecondition));

  // A's lease runs out: B takes it over with the next token.
  KW_ASSERT_OK(a_->AcquireLease("rotation", "replica-a", absl::Milliseconds(1)).status());
  absl::StatusOr<Lease> taken;
  const absl::Time deadline = absl::Now() + kPatience;
  do {
    taken = b_->AcquireLease("rotation", "replica-b", absl::Minutes(1));
    if (!taken.ok()) absl::SleepFor(absl::Milliseconds(10));
  } while (!taken.ok() && absl::Now() < deadline);
  KW_ASSERT_OK(taken.status());
  EXPECT_EQ(taken->fencing_token, first.fencing_token + 1);
  EXPECT_THAT(a_->AcquireLease("rotation", "replica-a", absl::Minutes(1)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("held by replica-b")));

  // A release lets the other in at once.
  KW_ASSERT_OK(b_->ReleaseLease("rotation", "replica-b"));
  KW_ASSERT_OK_AND_ASSIGN(Lease back, a_->AcquireLease("rotation", "replica-a", absl::Minutes(1)));
  EXPECT_EQ(back.fencing_token, first.fencing_token + 2);
}

TEST_F(TwoReplicasTest, ReplicasRacingForAnExpiredLeaseHaveOneWinner) {
  KW_ASSERT_OK_AND_ASSIGN(Lease old, a_->AcquireLease("sched", "old", absl::Microseconds(1)));
  absl::SleepFor(absl::Milliseconds(20));  // the database's clock passes 1 µs
  constexpr int kRacers = 8;
  std::vector<absl::StatusOr<Lease>> results(kRacers);
  std::vector<std::thread> racers;
  for (int i = 0; i < kRacers; ++i) {
    racers.emplace_back([&, i] {
      results[i] = Replica(i).AcquireLease("sched", absl::StrCat("racer-", i), absl::Minutes(1));
    });
  }
  for (auto& t : racers) t.join();
  int winners = 0;
  for (const auto& r : results) {
    if (r.ok()) {
      ++winners;
      EXPECT_EQ(r->fencing_token, old.fencing_token + 1);
    } else {
      EXPECT_THAT(r, StatusIs(absl::StatusCode::kFailedPrecondition));
    }
  }
  EXPECT_EQ(winners, 1);
}

// What a replica's cache hears, in order.
class ChangeLog {
 public:
  std::function<void(const StoreChange&)> Callback() {
    return [this](const StoreChange& c) {
      std::lock_guard<std::mutex> lock(mu_);
      changes_.push_back(c);
      cv_.notify_all();
    };
  }
  // Waits (up to kPatience) for `n` changes in all; returns what arrived.
  std::vector<StoreChange> WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoSeconds(kPatience), [&] { return changes_.size() >= n; });
    return changes_;
  }
  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    changes_.clear();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<StoreChange> changes_;
};

std::string Describe(const StoreChange& c) {
  const char* kinds[] = {"key", "grants", "tenant", "everything"};
  return absl::StrCat(kinds[static_cast<int>(c.kind)], ":", c.key_name, ":", c.tenant);
}

std::vector<std::string> Describe(const std::vector<StoreChange>& changes) {
  std::vector<std::string> out;
  for (const auto& c : changes) out.push_back(Describe(c));
  return out;
}

policy::Grant MakeGrant(const std::string& id) {
  policy::Grant g;
  g.id = id;
  g.principal = "spiffe://x/responder";
  g.key = "k";
  g.operations = {"decrypt"};
  g.created = absl::FromUnixSeconds(100);
  g.expires = absl::FromUnixSeconds(200);
  g.created_by = "admin";
  g.reason = "incident";
  return g;
}

TEST_F(TwoReplicasTest, AReplicaHearsTheOthersChangesInOrder) {
  ChangeLog log;
  KW_ASSERT_OK(b_->Watch(log.Callback()));
  KW_ASSERT_OK(a_->CreateKey(SimpleTestKey("k")));
  KW_ASSERT_OK_AND_ASSIGN(Key key, a_->GetKey("k"));
  key.labels["x"] = "y";
  KW_ASSERT_OK(a_->UpdateKey(key));
  // Counters are not changes a cache cares about.
  KW_ASSERT_OK(a_->AddUsage({{"k", 1, 1, 1, absl::Now()}}));
  KW_ASSERT_OK(a_->AddDataKeysIssued("k", 1, 1, 10).status());
  KW_ASSERT_OK(a_->CreateGrant(MakeGrant("g-1")));
  KW_ASSERT_OK(a_->RevokeGrant("g-1", absl::FromUnixSeconds(150)));
  const std::string tenant("t\0|\xff", 4);  // bytes a payload must survive
  TenantKeyRecord record;
  record.key_name = "k";
  record.tenant = tenant;
  record.sealed = "sealed";
  record.created = absl::FromUnixSeconds(100);
  KW_ASSERT_OK(a_->PutTenantKey(record));
  KW_ASSERT_OK(a_->EraseTenantKey("k", tenant, absl::FromUnixSeconds(200), "admin").status());
  const std::string t = absl::StrCat("tenant:k:", tenant);
  EXPECT_THAT(Describe(log.WaitFor(6)),
              ElementsAre("key:k:", "key:k:", "grants::", "grants::", t, t));
}

TEST(ChangePayloadTest, RoundTripsAnyBytesAndFallsBackToEverything) {
  const StoreChange tenant{StoreChange::Kind::kTenantKey, "a/b", std::string("\0|\xff", 3)};
  auto decoded = internal::DecodeChange(internal::EncodeChange(tenant));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(Describe(*decoded), Describe(tenant));
  const StoreChange huge{StoreChange::Kind::kTenantKey, "k", std::string(5000, 'x')};
  EXPECT_EQ(internal::DecodeChange(internal::EncodeChange(huge))->kind,
            StoreChange::Kind::kEverything);
  EXPECT_FALSE(internal::DecodeChange("k|zz|").has_value());
  EXPECT_FALSE(internal::DecodeChange("hello").has_value());
}

// Restarts the shared server however the test ends.
class OutageTest : public TwoReplicasTest {
 protected:
  void TearDown() override {
    if (stopped_) {
      auto server = ::keyward::testing::SharedPostgresServer();
      if (server.ok()) {
        EXPECT_THAT((*server)->Restart(), ::keyward::testing::IsOk());
      }
    }
  }
  void StopServer() {
    KW_ASSERT_OK_AND_ASSIGN(auto* server, ::keyward::testing::SharedPostgresServer());
    KW_ASSERT_OK(server->Stop());
    stopped_ = true;
  }
  void RestartServer() {
    KW_ASSERT_OK_AND_ASSIGN(auto* server, ::keyward::testing::SharedPostgresServer());
    KW_ASSERT_OK(server->Restart());
    stopped_ = false;
  }
  bool stopped_ = false;
};

TEST_F(OutageTest, OperationsFailClearlyDuringAnOutageAndRecoverAfterIt) {
  KW_ASSERT_OK(a_->CreateKey(SimpleTestKey("k")));
  ChangeLog log;
  KW_ASSERT_OK(b_->Watch(log.Callback()));
  KW_ASSERT_OK_AND_ASSIGN(Key key, a_->GetKey("k"));  // a pooled connection, soon stale

  ASSERT_NO_FATAL_FAILURE(StopServer());
  EXPECT_THAT(a_->GetKey("k"),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("the key store (PostgreSQL 127.0.0.1:")));
  key.labels["during"] = "outage";
  EXPECT_THAT(a_->UpdateKey(key), StatusIs(absl::StatusCode::kUnavailable,
                                           HasSubstr("is unreachable")));
  EXPECT_THAT(b_->AcquireLease("l", "b", absl::Minutes(1)),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(b_->CountKeys(), StatusIs(absl::StatusCode::kUnavailable));

  ASSERT_NO_FATAL_FAILURE(RestartServer());
  // The listener reconnects and says it may have missed changes.
  std::vector<StoreChange> heard = log.WaitFor(1);
  ASSERT_FALSE(heard.empty());
  EXPECT_EQ(heard[0].kind, StoreChange::Kind::kEverything);
  log.Clear();
  // The same store objects work again: nothing was committed meanwhile.
  KW_ASSERT_OK_AND_ASSIGN(Key after, a_->GetKey("k"));
  EXPECT_EQ(after.revision, key.revision);
  EXPECT_EQ(after.labels.count("during"), 0u);
  KW_ASSERT_OK(a_->UpdateKey(key));
  KW_ASSERT_OK(b_->AcquireLease("l", "b", absl::Minutes(1)).status());
  // kEverything may repeat while the listener settles; the update follows.
  bool heard_update = false;
  for (size_t n = 1; !heard_update; ++n) {
    heard = log.WaitFor(n);
    if (heard.size() < n) break;
    heard_update = heard.back().kind == StoreChange::Kind::kKey && heard.back().key_name == "k";
  }
  EXPECT_TRUE(heard_update) << ::testing::PrintToString(Describe(heard));
}

TEST(PostgresKeyStoreTest, AnUnreachableServerIsReportedWithoutThePassword) {
  const std::string url = absl::StrCat("postgresql://keyward:s3cret-pw@127.0.0.1:",
                                       ::keyward::testing::FreePort(), "/x");
  auto store = PostgresKeyStore::Open(url, "dev");
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("is unreachable")));
  EXPECT_THAT(store.status().message(), ::testing::Not(HasSubstr("s3cret-pw")));
  // The URL as the operator wrote it, not with the store's defaults added.
  EXPECT_THAT(store.status().message(), ::testing::Not(HasSubstr("tcp_user_timeout")));
  EXPECT_THAT(PostgresKeyStore::Open("postgresql://keyward:s3cret-pw@[::1/x", "dev"),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::Not(HasSubstr("s3cret-pw"))));
}

TEST(PostgresKeyStoreTest, AStatementStuckOnALockGivesUpAfterTheTimeout) {
  KW_ASSERT_OK_AND_ASSIGN(std::string url, FreshPostgresDatabase());
  PostgresKeyStoreOptions options;
  options.connect_timeout = absl::Seconds(1);
  KW_ASSERT_OK_AND_ASSIGN(auto store, PostgresKeyStore::Open(url, "dev", options));
  KW_ASSERT_OK(store->CreateKey(SimpleTestKey("k")));
  KW_ASSERT_OK_AND_ASSIGN(Key key, store->GetKey("k"));
  // Another client (a stuck replica) holds the key's row.
  KW_ASSERT_OK_AND_ASSIGN(auto other, appdb::PostgresDatabase::Open(url));
  KW_ASSERT_OK(other->Begin());
  KW_ASSERT_OK(
      other->Query("SELECT 1 FROM keyward_keys WHERE name = 'k' FOR UPDATE", {}).status());
  key.labels["x"] = "1";
  EXPECT_THAT(store->UpdateKey(key), StatusIs(absl::StatusCode::kDeadlineExceeded));
  KW_ASSERT_OK(other->Rollback());
  // The connection stayed usable and nothing was written.
  KW_ASSERT_OK(store->UpdateKey(key));
  KW_ASSERT_OK_AND_ASSIGN(Key after, store->GetKey("k"));
  EXPECT_EQ(after.revision, key.revision + 1);
}

TEST(PostgresKeyStoreTest, BelongsToOneEnvironment) {
  KW_ASSERT_OK_AND_ASSIGN(std::string url, FreshPostgresDatabase());
  { KW_ASSERT_OK_AND_ASSIGN(auto store, PostgresKeyStore::Open(url, "dev")); }
  auto other = PostgresKeyStore::Open(url, "production");
  EXPECT_THAT(other, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("'dev'")));
  EXPECT_EQ(GetErrorCode(other.status()), ErrorCode::kEnvironmentMismatch);
}

int64_t AppliedMigrations(const std::string& url) {
  auto db = appdb::PostgresDatabase::Open(url);
  EXPECT_TRUE(db.ok()) << db.status();
  if (!db.ok()) return -1;
  auto rows = (*db)->Query("SELECT COUNT(*) FROM keyward_key_store_schema", {});
  EXPECT_TRUE(rows.ok()) << rows.status();
  return rows.ok() ? std::get<int64_t>((*rows)[0][0]) : -1;
}

TEST(PostgresKeyStoreTest, MigrationsRunOnceWhateverHowManyReplicasOpenAtOnce) {
  KW_ASSERT_OK_AND_ASSIGN(std::string url, FreshPostgresDatabase());
  constexpr int kReplicas = 6;
  std::vector<absl::Status> results(kReplicas);
  std::vector<std::thread> openers;
  for (int i = 0; i < kReplicas; ++i) {
    openers.emplace_back([&, i] { results[i] = PostgresKeyStore::Open(url, "dev").status(); });
  }
  for (auto& t : openers) t.join();
  for (const auto& s : results) EXPECT_THAT(s, ::keyward::testing::IsOk());
  const auto applied = static_cast<int64_t>(PostgresMigrations().size());
  EXPECT_EQ(AppliedMigrations(url), applied);

  {
    KW_ASSERT_OK_AND_ASSIGN(auto store, PostgresKeyStore::Open(url, "dev"));
    KW_ASSERT_OK(store->CreateKey(SimpleTestKey("k")));
  }
  KW_ASSERT_OK_AND_ASSIGN(auto reopened, PostgresKeyStore::Open(url, "dev"));
  EXPECT_EQ(AppliedMigrations(url), applied);
  KW_ASSERT_OK_AND_ASSIGN(Key key, reopened->GetKey("k"));
  EXPECT_EQ(key.versions[0].sealed_kek, "sealed");
  KW_ASSERT_OK_AND_ASSIGN(StoreInfo info, reopened->GetInfo());
  EXPECT_EQ(info.schema_version, PostgresMigrations().back().number);
  EXPECT_EQ(info.environment, "dev");
}

TEST(PostgresKeyStoreTest, RefusesASchemaNewerThanTheBuild) {
  KW_ASSERT_OK_AND_ASSIGN(std::string url, FreshPostgresDatabase());
  std::vector<Migration> newer = PostgresMigrations();
  newer.push_back({newer.back().number + 1, "from the future",
                   "CREATE TABLE keyward_future (id INTEGER)"});
  {
    KW_ASSERT_OK_AND_ASSIGN(auto store,
                            PostgresKeyStore::OpenWithMigrations(url, "dev", {}, newer));
  }
  EXPECT_THAT(PostgresKeyStore::Open(url, "dev"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("upgrade keywardd")));
}

// Row versions on the table's first page that hold `needle` (pageinspect,
// which the test cluster's superuser may install).
int64_t RowVersionsHolding(appdb::Database& db, const std::string& needle) {
  std::vector<appdb::Value> params;
  params.emplace_back(std::in_place_type<appdb::Blob>, appdb::Blob{needle});
  auto rows = db.Query(
      "SELECT COUNT(*) FROM heap_page_items(get_raw_page('keyward_tenant_keys', 0)) "
      "WHERE t_data IS NOT NULL AND position($1 IN t_data) > 0",
      params);
  EXPECT_TRUE(rows.ok()) << rows.status();
  return rows.ok() ? std::get<int64_t>((*rows)[0][0]) : -1;
}

TEST(PostgresKeyStoreTest, ScrubRemovesTheRowVersionsAnErasureLeftBehind) {
  KW_ASSERT_OK_AND_ASSIGN(std::string url, FreshPostgresDatabase());
  KW_ASSERT_OK_AND_ASSIGN(auto store, PostgresKeyStore::Open(url, "dev"));
  KW_ASSERT_OK_AND_ASSIGN(auto db, appdb::PostgresDatabase::Open(url));
  KW_ASSERT_OK(db->Execute("CREATE EXTENSION IF NOT EXISTS pageinspect", {}).status());
  const std::string sealed = "SEALED-TENANT-KEY-7f3a9c2e41b8d6052c9e";
  TenantKeyRecord record;
  record.key_name = "k";
  record.tenant = "acme";
  record.sealed = sealed;
  record.created = absl::FromUnixSeconds(100);
  KW_ASSERT_OK(store->PutTenantKey(record));
  KW_ASSERT_OK(store->EraseTenantKey("k", "acme", absl::FromUnixSeconds(200), "admin").status());
  KW_ASSERT_OK_AND_ASSIGN(auto now, store->GetTenantKey("k", "acme"));
  ASSERT_TRUE(now.has_value() && now->is_erased());
  // MVCC keeps the erased row version until a vacuum (else the test proves
  // nothing).
  ASSERT_EQ(RowVersionsHolding(*db, sealed), 1);
  KW_ASSERT_OK(store->Scrub());
  EXPECT_EQ(RowVersionsHolding(*db, sealed), 0);
}

}  // namespace
}  // namespace keyward::keystore
