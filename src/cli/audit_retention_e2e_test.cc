// End to end: segments, `keyward audit archive`, `audit prune` and
// `audit verify --archive` against a real keywardd whose segments close at
// 1 MiB, and automatic archival by audit.retention.
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/e2e_fixture.h"

namespace keyward {
namespace {

using ::keyward::testing::ProcessResult;
using ::keyward::testing::ReadFileOrDie;
using ::keyward::testing::WriteFileOrDie;
using ::testing::HasSubstr;
using Json = nlohmann::json;

class AuditRetentionTest : public E2eTest {
 protected:
  void SetUp() override {
    auto s = testing::DevServer::Init(KEYWARD_CLI, KEYWARDD);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
  }
  // Starts keywardd with `audit_extra` added to its audit section.
  void StartWith(const std::string& audit_extra) {
    const std::string path = server_->File("keywardd.yaml");
    std::string yaml = ReadFileOrDie(path);
    const std::string marker = "  checkpoint_interval: 60s\n";
    ASSERT_NE(yaml.find(marker), std::string::npos);
    yaml = absl::StrReplaceAll(yaml, {{marker, marker + audit_extra}});
    WriteFileOrDie(path, yaml);
    KW_ASSERT_OK(server_->Start());
  }
  // Enough data-key calls to fill more than one 1 MiB segment.
  void Load(int calls) {
    auto admin = Connect(server_->admin_config());
    KW_ASSERT_OK(admin->CreateKey("k").status());
    std::vector<std::thread> threads;
    for (int t = 0; t < 16; ++t) {
      threads.emplace_back([&] {
        auto app = Connect(server_->app_config());
        for (int i = 0; i < calls / 16; ++i) {
          ASSERT_TRUE(app->GenerateDataKey("k", {{"tenant", "acme"}}).ok());
        }
      });
    }
    for (auto& th : threads) th.join();
  }
  std::string Future() {
    return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now() + absl::Hours(24),
                            absl::UTCTimeZone());
  }
  Json Segments() { return CliJson({"audit", "segments", "--json"}); }
};

TEST_F(AuditRetentionTest, ArchivePruneAndVerifyThroughTheCli) {
  StartWith("  segment_max_mib: 1\n");
  Load(16 * 1200);
  Json segs = Segments();
  ASSERT_TRUE(segs["segmented"].get<bool>());
  ASSERT_GE(segs["segments"].size(), 2u) << segs.dump();
  EXPECT_TRUE(segs["segments"][0]["closed"].get<bool>());
  EXPECT_EQ(segs["segments"][0]["archived_to"], "");
  const std::string dir = server_->File("audit");
  const std::string archive = server_->File("archive");

  // Never archived: refused, nothing removed.
  ProcessResult refused = server_->Cli({"audit", "prune", "--before", Future()});
  EXPECT_EQ(refused.exit_code, 5) << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("never archived"));
  EXPECT_EQ(Segments()["pruned_records"].get<uint64_t>(), 0u);

  // Archived, then pruned.
  Json archived = CliJson({"audit", "archive", "--log", dir, "--to", archive, "--before",
                           Future(), "--json"});
  ASSERT_GE(archived["segments"].size(), 1u) << archived.dump();
  Json dry = CliJson({"audit", "prune", "--before", Future(), "--dry-run", "--json"});
  EXPECT_EQ(dry["segments"].size(), archived["segments"].size());
  EXPECT_EQ(Segments()["pruned_records"].get<uint64_t>(), 0u) << "a dry run removes nothing";
  Json pruned = CliJson({"audit", "prune", "--before", Future(), "--json"});
  EXPECT_EQ(pruned["unarchived"].get<uint64_t>(), 0u);
  const uint64_t p = pruned["pruned_after"].get<uint64_t>();
  EXPECT_GT(p, 0u);
  EXPECT_EQ(Segments()["pruned_records"].get<uint64_t>(), p);
  EXPECT_NE(::access(absl::StrCat(dir, "/segments/00000000000000000000.seg").c_str(), F_OK), 0);
  // Who pruned what is in the log.
  ProcessResult q = server_->Cli({"audit", "query", "--op", "prune-audit-log", "--json"});
  ASSERT_EQ(q.exit_code, 0) << q.err;
  EXPECT_THAT(q.out, HasSubstr("spiffe://keyward.dev/admin"));
  EXPECT_THAT(q.out, HasSubstr("every one archived"));
  // Reading goes on from the first retained record.
  ProcessResult tail = server_->Cli({"audit", "tail", "-n", "1"});
  EXPECT_EQ(tail.exit_code, 0) << tail.err;
  ASSERT_EQ(server_->Cli({"audit", "checkpoint", "-o", server_->File("cp.json")}).exit_code, 0);
  ASSERT_EQ(server_->Stop(), 0);

  // The live log alone, and with the archive.
  ProcessResult live = server_->Cli({"audit", "verify", "--log", dir});
  EXPECT_EQ(live.exit_code, 0) << live.out << live.err;
  EXPECT_THAT(live.out, HasSubstr("were pruned"));
  ProcessResult whole = server_->Cli({"audit", "verify", "--log", dir, "--archive", archive,
                                      "--checkpoint", server_->File("cp.json")});
  EXPECT_EQ(whole.exit_code, 0) << whole.out << whole.err;
  // A segment missing from the archive.
  const std::string first = absl::StrCat(archive, "/segments/00000000000000000000.seg");
  const std::string saved = ReadFileOrDie(first);
  ASSERT_EQ(::unlink(first.c_str()), 0);
  ProcessResult missing = server_->Cli({"audit", "verify", "--log", dir, "--archive", archive});
  EXPECT_EQ(missing.exit_code, 4) << missing.out << missing.err;
  EXPECT_THAT(missing.err, HasSubstr("missing"));
  WriteFileOrDie(first, saved);
  // keywardd starts again on its pruned log and goes on.
  KW_ASSERT_OK(server_->Start());
  auto app = Connect(server_->app_config());
  KW_EXPECT_OK(app->GenerateDataKey("k", {}).status());
}

TEST_F(AuditRetentionTest, RetentionArchivesClosedSegmentsByItself) {
  StartWith(absl::StrCat("  segment_max_mib: 1\n  retention:\n    archive_dir: ",
                         server_->File("auto-archive"), "\n    interval: 10s\n"));
  Load(16 * 1200);
  // Retention runs with the checkpointer (every 60s here) at most every
  // 10s: wait for the first closed segment to be archived.
  bool archived = false;
  const absl::Time end = absl::Now() + absl::Seconds(150);
  while (!archived && absl::Now() < end) {
    Json segs = Segments();
    archived = !segs["segments"].empty() && segs["segments"][0]["closed"].get<bool>() &&
               segs["segments"][0]["archived_to"] == server_->File("auto-archive");
    if (!archived) absl::SleepFor(absl::Seconds(2));
  }
  ASSERT_TRUE(archived) << Segments().dump();
  ASSERT_EQ(server_->Stop(), 0);
  ProcessResult alone = server_->Cli({"audit", "verify", "--archive", server_->File("auto-archive")});
  EXPECT_EQ(alone.exit_code, 0) << alone.out << alone.err;
}

}  // namespace
}  // namespace keyward
