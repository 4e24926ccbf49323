#include "server/access_control.h"

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "keystore/sqlite_key_store.h"
#include "testing/status_matchers.h"
#include "testing/subprocess.h"

namespace keyward::server {
namespace {

std::string PolicyNumbered(const std::string& who, int i) {
  return absl::StrCat(R"(rules:
  - name: admin
    principals: ["spiffe://t/admin"]
    keys: ["*"]
    operations: ["*"]
# )",
                      who, " ", i, "\n");
}

class AccessControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = keystore::SqliteKeyStore::Open(dir_.File("keys.db"), "dev");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    testing::WriteFileOrDie(dir_.File("policy.yaml"), PolicyNumbered("start", 0));
    auto access = AccessControl::Open(dir_.File("policy.yaml"), store_.get());
    ASSERT_TRUE(access.ok()) << access.status();
    access_ = std::move(*access);
  }
  testing::TempDir dir_;
  std::unique_ptr<keystore::SqliteKeyStore> store_;
  std::unique_ptr<AccessControl> access_;
};

// A SIGHUP reload racing `policy set`: every change is recorded once, each
// from the policy the one before it left in force (no change is lost or
// recorded against a stale policy), and the last one recorded is in force.
TEST_F(AccessControlTest, ReloadsAndSetsRacingLoseNoChange) {
  std::mutex record_mu;
  std::vector<PolicyChange> recorded;
  auto record = [&](const PolicyChange& c) {
    std::lock_guard<std::mutex> lock(record_mu);
    recorded.push_back(c);
    return absl::OkStatus();
  };
  constexpr int kRounds = 200;
  std::atomic<int> sets{0}, reloads{0};
  std::thread setter([&] {
    for (int i = 0; i < kRounds; ++i) {
      if (access_->SetPolicy(PolicyNumbered("set", i), record).ok()) ++sets;
    }
  });
  std::thread reloader([&] {
    for (int i = 0; i < kRounds; ++i) {
      // An operator's edit on disk (atomic, as editors and config tools
      // write), then SIGHUP.
      const std::string tmp = dir_.File("policy.yaml.edit");
      testing::WriteFileOrDie(tmp, PolicyNumbered("edit", i));
      ASSERT_EQ(::rename(tmp.c_str(), dir_.File("policy.yaml").c_str()), 0);
      if (access_->ReloadPolicy(record).ok()) ++reloads;
    }
  });
  setter.join();
  reloader.join();
  EXPECT_EQ(sets.load(), kRounds);
  EXPECT_EQ(reloads.load(), kRounds);
  ASSERT_EQ(recorded.size(), static_cast<size_t>(2 * kRounds));
  for (size_t i = 1; i < recorded.size(); ++i) {
    ASSERT_EQ(recorded[i].old_digest, recorded[i - 1].new_digest)
        << "change " << i << " was made against a policy no record put in force";
  }
  EXPECT_EQ(access_->PolicyDigest(), recorded.back().new_digest);
}

TEST_F(AccessControlTest, AChangeThatCannotBeRecordedDoesNotTakeEffect) {
  const std::string before = access_->PolicyText();
  auto failing = [](const PolicyChange&) { return absl::UnavailableError("audit log is down"); };
  EXPECT_EQ(access_->SetPolicy(PolicyNumbered("set", 1), failing).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(access_->PolicyText(), before);
  EXPECT_EQ(testing::ReadFileOrDie(dir_.File("policy.yaml")), before);
  testing::WriteFileOrDie(dir_.File("policy.yaml"), PolicyNumbered("edit", 1));
  EXPECT_EQ(access_->ReloadPolicy(failing).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(access_->PolicyText(), before);
}

}  // namespace
}  // namespace keyward::server
