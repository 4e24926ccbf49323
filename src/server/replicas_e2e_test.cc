// Two keywardd replicas over one real PostgreSQL key store: what one
// replica changes (a rotation, a disablement, the policy) is honoured by the
// other without a restart, and the scheduler lease passes to the survivor
// when its holder is killed, with a due rotation done exactly once.
#include <chrono>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keyward/connection.h"
#include "keyward/errors.h"
#include "testing/dev_server.h"
#include "testing/postgres_server.h"
#include "testing/status_matchers.h"
#include "testing/test_client.h"

namespace keyward {
namespace {

using ::testing::HasSubstr;

constexpr char kAppDenied[] = R"(rules:
  - name: dev-admin
    principals: ["spiffe://keyward.dev/admin"]
    keys: ["*"]
    operations: ["*"]
)";

class ReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KW_ASSERT_OK_AND_ASSIGN(testing::PostgresServer * pg, testing::SharedPostgresServer());
    static int n = 0;
    KW_ASSERT_OK_AND_ASSIGN(
        url_, pg->CreateDatabase(absl::StrCat("replicas_", ::getpid(), "_", ++n)));
    KW_ASSERT_OK_AND_ASSIGN(dev_, testing::DevServer::Init(KEYWARD_CLI, KEYWARDD));
    for (const char* id : {"r1", "r2"}) {
      KW_ASSERT_OK_AND_ASSIGN(auto r, dev_->AddReplica(id, url_));
      // One at a time: the first start creates the shared secrets.
      KW_ASSERT_OK(r->Start());
      replicas_.push_back(std::move(r));
    }
  }
  std::shared_ptr<testing::Client> Connect(const std::string& config) {
    auto options = LoadClientConfig(config);
    EXPECT_TRUE(options.ok()) << options.status();
    if (!options.ok()) return nullptr;
    auto client = testing::Client::Connect(*options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }
  // Polls `ok` until it holds (up to 20 s); returns how long it took, or
  // nullopt.  The figure is printed, not asserted: the notification is the
  // only way the other replica can learn of the change (its key cache has
  // no expiry), so seeing it at all proves the path.
  template <typename F>
  std::optional<absl::Duration> Until(const char* what, F ok) {
    const absl::Time start = absl::Now();
    while (absl::Now() - start < absl::Seconds(20)) {
      if (ok()) {
        const absl::Duration took = absl::Now() - start;
        std::printf("replicas: %s seen by the other replica after %.0f ms\n", what,
                    absl::ToDoubleMilliseconds(took));
        return took;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::nullopt;
  }

  std::string url_;
  std::unique_ptr<testing::DevServer> dev_;
  std::vector<std::unique_ptr<testing::DevServer>> replicas_;
};

TEST_F(ReplicasTest, ACompromiseDeclaredThroughOneReplicaIsHonouredByTheOther) {
  auto admin1 = Connect(replicas_[0]->admin_config());
  auto app2 = Connect(replicas_[1]->app_config());
  auto admin2 = Connect(replicas_[1]->admin_config());
  ASSERT_TRUE(admin1 && app2 && admin2);
  KW_ASSERT_OK(admin1->CreateKey("ha/cards").status());
  // r2 reads the key once and caches it, version 1 primary.
  KW_ASSERT_OK_AND_ASSIGN(auto old_key, app2->GenerateDataKey("ha/cards", {}));
  EXPECT_EQ(old_key.key.key_version, 1u);

  KW_ASSERT_OK_AND_ASSIGN(CompromiseInfo c,
                          admin1->CompromiseVersion("ha/cards", 1, "INC-HA: test"));
  EXPECT_EQ(c.new_primary_version, 2u);
  // r2 wraps under version 2 without a restart, and flags decrypts under 1.
  EXPECT_TRUE(Until("compromise", [&] {
    auto k = app2->GenerateDataKey("ha/cards", {});
    return k.ok() && k->key.key_version == 2;
  }));
  KW_ASSERT_OK(app2->DecryptDataKey(old_key.encrypted.ciphertext, {}).status());
  AuditQuery q;
  q.operation = "decrypt";
  q.key = "ha/cards";
  KW_ASSERT_OK_AND_ASSIGN(AuditPage page, admin2->ReadAuditRecords(q));  // r2's own log
  ASSERT_FALSE(page.records.empty());
  EXPECT_THAT(page.records.back(), HasSubstr("COMPROMISED: version 1"));
  KW_ASSERT_OK_AND_ASSIGN(KeyInfo k, admin2->GetKey("ha/cards"));
  ASSERT_TRUE(k.versions[0].compromised.has_value());
  EXPECT_EQ(k.versions[0].compromise_reason, "INC-HA: test");
}

TEST_F(ReplicasTest, ChangesThroughOneReplicaAreHonouredByTheOther) {
  auto admin1 = Connect(replicas_[0]->admin_config());
  auto app2 = Connect(replicas_[1]->app_config());
  auto admin2 = Connect(replicas_[1]->admin_config());
  ASSERT_TRUE(admin1 && app2 && admin2);
  KW_ASSERT_OK(admin1->CreateKey("ha/orders").status());
  // r2 reads the key once and caches it.
  KW_ASSERT_OK_AND_ASSIGN(auto first, app2->GenerateDataKey("ha/orders", {}));
  EXPECT_EQ(first.key.key_version, 1u);

  // A rotation through r1: r2 issues under version 2 without a restart.
  KW_ASSERT_OK(admin1->RotateKey("ha/orders").status());
  EXPECT_TRUE(Until("rotation", [&] {
    auto k = app2->GenerateDataKey("ha/orders", {});
    return k.ok() && k->key.key_version == 2;
  }));
  // Data keys from either replica decrypt through the other.
  KW_ASSERT_OK_AND_ASSIGN(auto from2, app2->GenerateDataKey("ha/orders", {{"o", "1"}}));
  auto app1 = Connect(replicas_[0]->app_config());
  ASSERT_TRUE(app1);
  KW_ASSERT_OK_AND_ASSIGN(SecretData back, app1->DecryptDataKey(from2.encrypted.ciphertext, {{"o", "1"}}));
  EXPECT_EQ(back.AsStringView(), from2.plaintext.AsStringView());

  // Disabling version 1 through r1 (forced: nothing reported it unused):
  // r2, which holds its KEK unsealed, stops decrypting under it.
  KW_ASSERT_OK(app2->DecryptDataKey(first.encrypted.ciphertext, {}).status());
  KW_ASSERT_OK(admin1->DisableVersion("ha/orders", 1, /*force=*/true).status());
  EXPECT_TRUE(Until("disablement", [&] {
    auto d = app2->DecryptDataKey(first.encrypted.ciphertext, {});
    return !d.ok() && d.status().code() == absl::StatusCode::kFailedPrecondition;
  }));

  // A policy change through r1 denies the app on r2 too, and the old
  // policy set back through r2 lets it in again on r1.
  KW_ASSERT_OK_AND_ASSIGN(std::string dev_policy, admin1->GetPolicy());
  KW_ASSERT_OK(admin1->SetPolicy(kAppDenied).status());
  EXPECT_TRUE(Until("policy change", [&] {
    auto k = app2->GenerateDataKey("ha/orders", {});
    return !k.ok() && k.status().code() == absl::StatusCode::kPermissionDenied;
  }));
  KW_ASSERT_OK(admin2->SetPolicy(dev_policy).status());
  EXPECT_TRUE(Until("policy restored", [&] {
    return app1->GenerateDataKey("ha/orders", {}).ok();
  }));
  KW_ASSERT_OK_AND_ASSIGN(std::string in_force, admin1->GetPolicy());
  EXPECT_EQ(in_force, dev_policy);
}

TEST_F(ReplicasTest, TheSchedulerLeasePassesToTheSurvivorAndRotatesOnce) {
  auto admin = Connect(replicas_[1]->admin_config());
  ASSERT_TRUE(admin);
  // Which replica holds the lease shows in its metrics.
  auto holder = [&]() -> int {
    for (size_t i = 0; i < replicas_.size(); ++i) {
      if (replicas_[i]->running() &&
          replicas_[i]->HttpGet("/metrics").find("keyward_scheduler_lease_held 1") !=
              std::string::npos) {
        return static_cast<int>(i);
      }
    }
    return -1;
  };
  int first = -1;
  ASSERT_TRUE(Until("a lease holder", [&] { return (first = holder()) >= 0; }));
  const int survivor = 1 - first;
  admin = Connect(replicas_[survivor]->admin_config());
  ASSERT_TRUE(admin);

  // Due every 6 s: the holder is killed before the first rotation is due,
  // the survivor takes over within the lease (3 s) and rotates.
  KW_ASSERT_OK(admin->CreateKey("ha/periodic", {.rotation_period = absl::Seconds(6)}).status());
  std::this_thread::sleep_for(std::chrono::seconds(4));
  replicas_[first]->Kill();
  const absl::Time killed = absl::Now();
  ASSERT_TRUE(Until("the lease taken over", [&] { return holder() == survivor; }));
  std::printf("replicas: lease taken over %.1f s after kill -9 of its holder\n",
              absl::ToDoubleSeconds(absl::Now() - killed));
  ASSERT_TRUE(Until("the due rotation", [&] {
    auto k = admin->GetKey("ha/periodic");
    return k.ok() && k->primary_version >= 2;
  }));
  // Restart the killed replica: two schedulers again, still one rotation
  // per period.  Never two versions closer than the period.
  KW_ASSERT_OK(replicas_[first]->Start());
  std::this_thread::sleep_for(std::chrono::seconds(10));
  KW_ASSERT_OK_AND_ASSIGN(KeyInfo key, admin->GetKey("ha/periodic"));
  ASSERT_GE(key.versions.size(), 2u);
  for (size_t i = 1; i < key.versions.size(); ++i) {
    EXPECT_GE(key.versions[i].created - key.versions[i - 1].created, absl::Seconds(6))
        << "versions " << key.versions[i - 1].version << " and " << key.versions[i].version
        << " were made by two schedulers at once";
  }
}

}  // namespace
}  // namespace keyward
