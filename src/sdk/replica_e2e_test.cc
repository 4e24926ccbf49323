// The SDK over several keywardd replicas: a dead endpoint is ejected and
// tried a bounded number of times, a replica killed mid-workload fails no
// call, and a state-changing call is sent again only when it provably never
// left, otherwise it says it may have been applied.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keyward/admin_client.h"
#include "keyward/data_client.h"
#include "keyward/errors.h"
#include "testing/e2e_fixture.h"

namespace keyward {
namespace {

using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;

std::string Address(int port) { return absl::StrCat("127.0.0.1:", port); }

class ReplicaTest : public E2eTest {
 protected:
  // The principal of `config` on `servers`, ejecting failed ones for
  // `ejection` (a long one makes the number of attempts deterministic).
  std::shared_ptr<Connection> Open(const std::string& config, std::vector<std::string> servers,
                                   absl::Duration ejection) {
    auto o = LoadClientConfig(config);
    EXPECT_TRUE(o.ok()) << o.status();
    if (!o.ok()) return nullptr;
    o->servers = std::move(servers);
    o->ejection_time = ejection;
    o->max_ejection_time = std::max(ejection, absl::Seconds(1));
    auto c = Connection::Open(*o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : nullptr;
  }
  // A closed port: connections to it are refused.
  const std::string dead_ = Address(testing::FreePort());
};

TEST_F(ReplicaTest, ADeadEndpointIsEjectedAndNotTriedAgainWhileAnotherIsHealthy) {
  auto live = Address(server_->port());
  auto admin = Open(server_->admin_config(), {live}, absl::Seconds(1));
  ASSERT_NE(admin, nullptr);
  KW_ASSERT_OK(AdminClient(admin).CreateKey("k").status());
  auto app = Open(server_->app_config(), {dead_, live}, absl::Hours(1));
  ASSERT_NE(app, nullptr);
  DataClient data(app);
  const EncryptionContext ctx = {{"i", "x"}};
  for (int i = 0; i < 50; ++i) {
    KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey dk, data.GenerateDataKey("k", ctx));
    KW_ASSERT_OK_AND_ASSIGN(SecretData pt, data.DecryptDataKey(dk.encrypted.ciphertext, ctx));
    EXPECT_EQ(pt.AsStringView(), dk.plaintext.AsStringView());
  }
  const std::vector<EndpointStats> stats = app->Endpoints();
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].address, dead_);
  // Tried once (by Open), then skipped for the whole workload.
  EXPECT_EQ(stats[0].attempts, 1u);
  EXPECT_EQ(stats[0].failures, 1u);
  EXPECT_EQ(stats[0].ejections, 1u);
  EXPECT_TRUE(stats[0].ejected);
  EXPECT_EQ(stats[1].attempts, 101u);  // Open's retry and the 100 calls
  EXPECT_EQ(stats[1].failures, 0u);
  EXPECT_FALSE(stats[1].ejected);
}

TEST_F(ReplicaTest, AReplicaKilledMidWorkloadFailsNoCall) {
  auto admin = Open(server_->admin_config(), {Address(server_->port())}, absl::Seconds(1));
  ASSERT_NE(admin, nullptr);
  KW_ASSERT_OK(AdminClient(admin).CreateKey("k").status());
  admin.reset();
  // A second replica with the same keys: data keys of one open on the other.
  ASSERT_EQ(server_->Stop(), 0);
  KW_ASSERT_OK_AND_ASSIGN(std::unique_ptr<testing::DevServer> second, server_->Replica());
  KW_ASSERT_OK(server_->Start());
  KW_ASSERT_OK(second->Start());
  auto app = Open(server_->app_config(),
                  {dead_, Address(server_->port()), Address(second->port())}, absl::Hours(1));
  ASSERT_NE(app, nullptr);
  DataClient data(app);

  std::atomic<int> done{0};
  std::mutex mu;
  std::vector<std::string> errors;
  auto work = [&](int thread, int calls) {
    for (int i = 0; i < calls; ++i) {
      const EncryptionContext ctx = {{"t", std::to_string(thread)}, {"i", std::to_string(i)}};
      absl::Status s;
      auto dk = data.GenerateDataKey("k", ctx);
      if (dk.ok()) {
        auto pt = data.DecryptDataKey(dk->encrypted.ciphertext, ctx);
        s = pt.ok() ? absl::OkStatus() : pt.status();
        if (pt.ok() && pt->AsStringView() != dk->plaintext.AsStringView()) {
          s = absl::InternalError("another data key came back");
        }
      } else {
        s = dk.status();
      }
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        errors.push_back(s.ToString());
      }
      done.fetch_add(1);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(work, t, 150);
  while (done.load() < 100) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  server_->Kill();  // kill -9, calls in flight
  for (auto& t : threads) t.join();
  // Calls that certainly start after the kill.
  work(4, 20);
  EXPECT_THAT(errors, ::testing::IsEmpty());
  const std::vector<EndpointStats> stats = app->Endpoints();
  ASSERT_EQ(stats.size(), 3u);
  EXPECT_EQ(stats[0].attempts, 1u);  // the closed port: by Open only
  EXPECT_GE(stats[1].ejections, 1u);  // the killed replica
  EXPECT_TRUE(stats[1].ejected);
  EXPECT_FALSE(stats[2].ejected);
  EXPECT_EQ(stats[2].failures, 0u);
  second->Stop();
}

// CreateKey is sent again only after a connection that could not be made:
// each call meets the dead endpoint first (never ejected for long here),
// moves on, and creates its key once (a second application would fail as
// already existing).
TEST_F(ReplicaTest, AStateChangingCallMovesOnOnlyWhenItWasNeverSent) {
  auto admin_conn = Open(server_->admin_config(), {dead_, Address(server_->port())},
                         absl::ZeroDuration());
  ASSERT_NE(admin_conn, nullptr);
  AdminClient admin(admin_conn);
  for (int i = 0; i < 6; ++i) {
    KW_EXPECT_OK(admin.CreateKey(absl::StrCat("n", i)).status());
  }
  const std::vector<EndpointStats> stats = admin_conn->Endpoints();
  EXPECT_GE(stats[0].attempts, 6u);
  EXPECT_EQ(stats[0].failures, stats[0].attempts);
  EXPECT_EQ(stats[1].failures, 0u);
  KW_ASSERT_OK_AND_ASSIGN(auto keys, admin.ListKeys());
  EXPECT_EQ(keys.keys.size(), 6u);
}

// A server that accepted the connection and then stops answering (SIGSTOP):
// CreateKey was sent, so it may have been applied, and it says so; a read
// is retried until the attempts run out, and says it may be retried.
TEST_F(ReplicaTest, AStateChangingCallThatWasSentSaysItMayHaveBeenApplied) {
  auto o = LoadClientConfig(server_->admin_config());
  ASSERT_TRUE(o.ok()) << o.status();
  o->deadline = absl::Seconds(2);
  o->max_attempts = 2;
  KW_ASSERT_OK_AND_ASSIGN(std::shared_ptr<Connection> conn, Connection::Open(*o));
  AdminClient admin(conn);
  server_->Signal(SIGSTOP);
  auto created = admin.CreateKey("x");
  auto read = admin.GetKey("x");
  server_->Signal(SIGCONT);
  EXPECT_THAT(created.status(), StatusIs(absl::StatusCode::kUnknown,
                                         HasSubstr("may have been applied")));
  EXPECT_EQ(GetErrorCode(created.status()), ErrorCode::kMayHaveBeenApplied);
  EXPECT_THAT(created.status().message(), HasSubstr("keyward key describe"));
  EXPECT_THAT(read.status(), StatusIs(absl::StatusCode::kUnavailable,
                                      HasSubstr(Address(server_->port()))));
  EXPECT_THAT(read.status().message(), HasSubstr("safe to retry"));
  EXPECT_EQ(conn->Endpoints()[0].failures, 3u);  // CreateKey once, GetKey twice
}

}  // namespace
}  // namespace keyward
