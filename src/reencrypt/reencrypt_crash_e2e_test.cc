// Re-encryption is crash-safe: kill -9 at random moments loses nothing, and
// the table commits only unchanged rows, together with the checkpoint.  The
// fixture is in reencrypt_e2e_fixture.h.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "nlohmann/json.hpp"
#include "reencrypt/reencrypt_e2e_fixture.h"
#include "reencrypt/database_table.h"
#include "testing/postgres_server.h"
#include "testing/subprocess.h"

namespace keyward {
namespace {

using ::keyward::testing::ProcessResult;
using ::keyward::testing::StatusIs;
using Json = nlohmann::json;

// kill -9 at random moments, many times, with rotations in between: every
// row decrypts after every kill, and a final run finishes the job.
TEST_P(ReencryptOnBothTest, KillNineAtRandomMomentsLosesNothing) {
  KW_ASSERT_OK(admin_->CreateKey("k").status());
  Fill("k", 0, 1500);
  KW_ASSERT_OK(admin_->RotateKey("k").status());
  std::mt19937 rng(20261128);
  std::uniform_int_distribution<int> throttled_delay_ms(20, 600);
  std::uniform_int_distribution<int> unthrottled_delay_ms(30, 250);
  int killed_mid_run = 0;
  // Full-speed kills that landed after the round committed batches and
  // before the job finished (its checkpoint moved and is still there).
  int unthrottled_killed_mid_run = 0;
  // At least 15 rounds; more (up to 31) until the kills have landed where
  // they must, since on a loaded machine a run may finish before its kill.
  int rounds = 0;
  for (int round = 0; round < 31; ++round) {
    if (round >= 15 && killed_mid_run >= 5 && unthrottled_killed_mid_run >= 2) break;
    ++rounds;
    if (round == 7) {
      KW_ASSERT_OK(admin_->RotateKey("k").status());  // a moving target
    }
    std::vector<std::string> args = {KEYWARD_CLI, "--config", server_->admin_config()};
    // Even rounds rate-limited (one batch in flight), so that every run,
    // even a rescan, lasts long enough to be killed mid-way; odd rounds at
    // full speed, with three batches in keywardd while one commits, and
    // small batches so that there are many commits to land between.
    const bool throttled = round % 2 == 0;
    const int64_t done_before = Db(db_url_).CheckpointRowsDone();
    for (const std::string& a : throttled ? Args({"--batch", "40", "--rate", "2500"})
                                          : Args({"--batch", "4"})) {
      args.push_back(a);
    }
    const pid_t pid = testing::SpawnQuietly(args);
    std::this_thread::sleep_for(std::chrono::milliseconds(
        throttled ? throttled_delay_ms(rng) : unthrottled_delay_ms(rng)));
    if (testing::KillIfRunning(pid)) {
      ++killed_mid_run;
      if (!throttled && Db(db_url_).CheckpointRowsDone() > std::max<int64_t>(done_before, 0)) {
        ++unthrottled_killed_mid_run;
      }
    }
    // The invariant, after every kill: every row decrypts to its original.
    auto versions = CheckAll();
    int total = 0;
    for (const auto& [v, n] : versions["k"]) total += n;
    ASSERT_EQ(total, 1500) << "round " << round;
  }
  std::printf("killed mid-run: %d of %d rounds; at full speed after progress: %d of %d\n",
              killed_mid_run, rounds, unthrottled_killed_mid_run, rounds / 2);
  EXPECT_GE(killed_mid_run, 5) << "the kills should land while the job runs";
  EXPECT_GE(unthrottled_killed_mid_run, 2) << "and some in a full-speed run that made progress";
  // The job resumes from its checkpoint and finishes.
  ProcessResult last = server_->Cli(Args({"--json"}));
  ASSERT_EQ(last.exit_code, 0) << last.err;
  Json r = Json::parse(last.out);
  EXPECT_EQ(r["failed"], 0);
  EXPECT_EQ(r["rows_per_version"]["k"]["3"], 1500);
  EXPECT_EQ(CheckAll()["k"][3], 1500);
}

// The table's contract on both backends: CommitBatch replaces only rows
// that still hold the value read, together with the checkpoint.
TEST(DatabaseTableTest, CommitsOnlyUnchangedRowsWithTheCheckpoint) {
  testing::TempDir dir;
  auto pg = testing::SharedPostgresServer();
  ASSERT_TRUE(pg.ok()) << pg.status();
  auto pg_url = (*pg)->CreateDatabase(absl::StrCat("reencrypt_table_", ::getpid()));
  ASSERT_TRUE(pg_url.ok()) << pg_url.status();
  for (const std::string& url : {"sqlite:" + dir.File("t.db"), *pg_url}) {
    SCOPED_TRACE(url);
    {
      auto created = appdb::Database::Open(url, /*create=*/true);
      ASSERT_TRUE(created.ok()) << created.status();
      appdb::Database& db = **created;
      KW_ASSERT_OK(
          db.Execute(absl::StrCat("CREATE TABLE t (k TEXT PRIMARY KEY, v ", db.BlobType(), ")"))
              .status());
      KW_ASSERT_OK(db.Execute("INSERT INTO t VALUES ($1, $2), ($3, $4), ($5, NULL)",
                              {"a", appdb::Blob{"\x01"}, "b", appdb::Blob{"\x02"}, "c"})
                       .status());
    }
    auto table = reencrypt::DatabaseTable::Open(url, "t", "v", "k");
    ASSERT_TRUE(table.ok()) << table.status();
    EXPECT_EQ(*(*table)->CountRows(), 2u);
    auto rows = (*table)->ReadBatch(std::nullopt, 10);
    ASSERT_TRUE(rows.ok()) << rows.status();
    ASSERT_EQ(rows->size(), 2u);
    EXPECT_EQ(std::get<std::string>((*rows)[0].id), "a");
    EXPECT_EQ((*rows)[1].value, "\x02");
    reencrypt::Checkpoint cp;
    cp.after = std::string("b");
    cp.rows_done = 2;
    auto replaced = (*table)->CommitBatch(
        {{std::string("a"), "\x01", "new-a"}, {std::string("b"), "stale", "new-b"}}, "job", cp);
    ASSERT_TRUE(replaced.ok()) << replaced.status();
    EXPECT_EQ(*replaced, 1u);  // b changed under us: left alone
    auto saved = (*table)->LoadCheckpoint("job");
    ASSERT_TRUE(saved.ok() && saved->has_value());
    EXPECT_EQ(std::get<std::string>(*(*saved)->after), "b");
    EXPECT_EQ((*saved)->rows_changed, 1u);
    EXPECT_EQ((*(*table)->ReadBatch(std::nullopt, 1))[0].value, "new-a");
    EXPECT_TRUE((*table)->ReadBatch(std::string("b"), 10)->empty());
    // A second commit updates the checkpoint in place.
    cp.rows_done = 3;
    KW_ASSERT_OK((*table)->CommitBatch({}, "job", cp).status());
    EXPECT_EQ((*(*table)->LoadCheckpoint("job"))->rows_done, 3u);
    KW_EXPECT_OK((*table)->ClearCheckpoint("job"));
    EXPECT_FALSE((*table)->LoadCheckpoint("job")->has_value());
    EXPECT_THAT(reencrypt::DatabaseTable::Open(url, "t", "v\"; --", "k"),
                StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(reencrypt::DatabaseTable::Open(url, "nope", "v", "k"),
                StatusIs(absl::StatusCode::kNotFound));
  }
  EXPECT_THAT(reencrypt::DatabaseTable::Open("sqlite:" + dir.File("missing.db"), "t", "v", "k"),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace keyward
