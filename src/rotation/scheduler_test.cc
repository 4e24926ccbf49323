#include "rotation/scheduler.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/software_root_of_trust.h"
#include "keystore/memory_key_store.h"
#include "testing/status_matchers.h"

namespace keyward::rotation {
namespace {

using ::testing::HasSubstr;

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kms::KeyServiceOptions o;
    o.environment = "dev";
    o.usage_flush_interval = absl::ZeroDuration();
    o.min_destruction_wait = absl::Minutes(1);
    o.max_data_keys_per_version = 100;
    o.clock = &clock_;
    auto svc = kms::KeyService::Create(o, std::make_unique<keystore::MemoryKeyStore>("dev"),
                                       std::make_unique<hsm::testing::SoftwareRootOfTrust>());
    ASSERT_TRUE(svc.ok()) << svc.status();
    svc_ = std::move(*svc);
    scheduler_ = std::make_unique<Scheduler>(svc_.get(), &clock_, 100, SchedulerOptions{},
                                             [this](const Action& a) { seen_.push_back(a); });
  }
  uint32_t Primary(const std::string& name) { return svc_->GetKey(name)->primary_version; }

  kms::FakeClock clock_;
  std::unique_ptr<kms::KeyService> svc_;
  std::unique_ptr<Scheduler> scheduler_;
  std::vector<Action> seen_;
};

TEST_F(SchedulerTest, RotatesOnTimeAndOnceAfterDowntime) {
  KW_ASSERT_OK(svc_->CreateKey({.name = "periodic", .rotation_period = absl::Hours(1)}).status());
  KW_ASSERT_OK(svc_->CreateKey({.name = "manual"}).status());
  clock_.Advance(absl::Minutes(59));
  EXPECT_TRUE(scheduler_->RunOnce().empty());
  clock_.Advance(absl::Minutes(1));
  auto actions = scheduler_->RunOnce();
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].key, "periodic");
  EXPECT_EQ(actions[0].from_version, 1u);
  EXPECT_EQ(actions[0].to_version, 2u);
  EXPECT_THAT(actions[0].reason, HasSubstr("rotation period 1h elapsed"));
  KW_EXPECT_OK(actions[0].status);
  EXPECT_EQ(seen_.size(), 1u);  // reported for the audit log
  // Down for five periods: one catch-up rotation, then quiet again.
  clock_.Advance(absl::Hours(5));
  EXPECT_EQ(scheduler_->RunOnce().size(), 1u);
  EXPECT_EQ(Primary("periodic"), 3u);
  EXPECT_TRUE(scheduler_->RunOnce().empty());
  clock_.Advance(absl::Minutes(30));
  EXPECT_TRUE(scheduler_->RunOnce().empty());
  EXPECT_EQ(Primary("periodic"), 3u);
  EXPECT_EQ(Primary("manual"), 1u);
}

TEST_F(SchedulerTest, RotatesBeforeTheDataKeyLimitIsReached) {
  KW_ASSERT_OK(svc_->CreateKey({.name = "busy"}).status());
  // The version's drill sample is one encryption under its KEK already.
  KW_ASSERT_OK(svc_->GenerateDataKeys("busy", {}, 88).status());
  EXPECT_TRUE(scheduler_->RunOnce().empty());
  KW_ASSERT_OK(svc_->GenerateDataKeys("busy", {}, 1).status());  // 90% of 100
  auto actions = scheduler_->RunOnce();
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_THAT(actions[0].reason, HasSubstr("issued 90 of its 100 data keys"));
  EXPECT_EQ(Primary("busy"), 2u);
  // The new primary starts from zero: data keys flow again.
  KW_EXPECT_OK(svc_->GenerateDataKeys("busy", {}, 50).status());
}

TEST_F(SchedulerTest, DestroysVersionsWhoseWaitingPeriodEnded) {
  KW_ASSERT_OK(svc_->CreateKey({.name = "k"}).status());
  KW_ASSERT_OK(svc_->RotateKey("k").status());
  KW_ASSERT_OK(svc_->ScheduleVersionDestruction("k", 1, absl::Hours(1), false).status());
  EXPECT_TRUE(scheduler_->RunOnce().empty());
  clock_.Advance(absl::Hours(1));
  auto actions = scheduler_->RunOnce();
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].kind, Action::Kind::kDestroy);
  // The action (and so its audit record) names what it destroyed.
  EXPECT_EQ(actions[0].key, "k");
  EXPECT_EQ(actions[0].to_version, 1u);
  EXPECT_THAT(actions[0].reason, HasSubstr("version 1 destroyed"));
  EXPECT_EQ(svc_->GetKey("k")->versions[0].state, keystore::VersionState::kDestroyed);
}

TEST_F(SchedulerTest, RunsInTheBackgroundUntilStopped) {
  KW_ASSERT_OK(svc_->CreateKey({.name = "periodic", .rotation_period = absl::Hours(1)}).status());
  clock_.Advance(absl::Hours(2));
  Scheduler background(svc_.get(), &clock_, 100, SchedulerOptions{.interval = absl::Milliseconds(10)},
                       nullptr);
  background.Start();
  for (int i = 0; i < 200 && Primary("periodic") == 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  background.Stop();
  EXPECT_EQ(Primary("periodic"), 2u);
}

// Two replicas sharing one store: only the lease holder acts, a released or
// expired lease passes to the other with a higher fencing token, and a due
// rotation happens once.
TEST(SchedulerLeaseTest, OnlyTheLeaseHolderActsAndTheLeasePassesOn) {
  kms::FakeClock clock;
  auto store = std::make_shared<keystore::MemoryKeyStore>("dev");
  auto root = std::make_shared<hsm::testing::SoftwareRootOfTrust>();
  kms::KeyServiceOptions o;
  o.environment = "dev";
  o.usage_flush_interval = absl::ZeroDuration();
  o.clock = &clock;
  KW_ASSERT_OK_AND_ASSIGN(auto svc_a, kms::KeyService::Create(o, store, root));
  KW_ASSERT_OK_AND_ASSIGN(auto svc_b, kms::KeyService::Create(o, store, root));
  auto options = [&](const std::string& holder) {
    SchedulerOptions so;
    so.lease_store = store.get();
    so.holder = holder;
    so.lease_ttl = absl::Milliseconds(300);
    return so;
  };
  Scheduler a(svc_a.get(), &clock, 100, options("a"), nullptr);
  Scheduler b(svc_b.get(), &clock, 100, options("b"), nullptr);
  KW_ASSERT_OK(svc_a->CreateKey({.name = "k", .rotation_period = absl::Hours(1)}).status());
  clock.Advance(absl::Hours(2));

  // Nobody acts without the lease.
  EXPECT_TRUE(a.RunOnce().empty());
  ASSERT_TRUE(a.RenewLease());
  EXPECT_FALSE(b.RenewLease());
  EXPECT_EQ(a.fencing_token(), 1u);
  EXPECT_EQ(b.fencing_token(), 0u);
  EXPECT_TRUE(b.RunOnce().empty());
  auto actions = a.RunOnce();
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].fencing_token, 1u);
  EXPECT_EQ(svc_b->GetKey("k")->primary_version, 2u);

  // A renewal keeps the token; a release hands the lease over at once.
  ASSERT_TRUE(a.RenewLease());
  EXPECT_EQ(a.fencing_token(), 1u);
  a.Stop();
  EXPECT_EQ(a.fencing_token(), 0u);
  ASSERT_TRUE(b.RenewLease());
  EXPECT_EQ(b.fencing_token(), 2u);

  // b dies without releasing: a gets the lease once it expired, not before.
  EXPECT_FALSE(a.RenewLease());
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_TRUE(b.RunOnce().empty()) << "a holder past its margin must not act";
  ASSERT_TRUE(a.RenewLease());
  EXPECT_EQ(a.fencing_token(), 3u);
  clock.Advance(absl::Hours(1));
  ASSERT_EQ(a.RunOnce().size(), 1u);
  EXPECT_TRUE(a.RunOnce().empty()) << "rotated once, not again";
  EXPECT_EQ(svc_a->GetKey("k")->primary_version, 3u);
}

}  // namespace
}  // namespace keyward::rotation
