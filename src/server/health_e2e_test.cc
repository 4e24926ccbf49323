// /healthz, /readyz and /metrics while the HSM has stopped answering: the
// listener has threads of its own and the HSM is asked on a probe thread,
// so health and metrics answer and readiness says why it is not ready.
#include <httplib.h>

#include <cstdlib>
#include <future>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keystore/memory_key_store.h"
#include "server/config.h"
#include "server/server.h"
#include "testing/dev_server.h"
#include "testing/software_root_of_trust.h"
#include "testing/status_matchers.h"

namespace keyward::server {
namespace {

using ::testing::HasSubstr;

struct Answer {
  int status = 0;  // 0: no answer (timed out or refused)
  std::string body;
};

Answer Get(int port, const std::string& path) {
  httplib::Client http("127.0.0.1", port);
  // Far longer than any answer takes; a listener blocked on the HSM would
  // give none (the HSM stays stalled until the checks are over).
  http.set_read_timeout(20, 0);
  auto res = http.Get(path.c_str());
  if (!res) return {};
  return {res->status, res->body};
}

TEST(HealthWhileTheHsmHangs, HealthAndMetricsAnswerAndReadinessSaysWhy) {
  KW_ASSERT_OK_AND_ASSIGN(auto dev, testing::DevServer::Init(KEYWARD_CLI, KEYWARDD));
  KW_ASSERT_OK_AND_ASSIGN(ServerConfig config, LoadServerConfig(dev->File("keywardd.yaml")));
  config.audit.in_memory = true;
  auto root = std::make_shared<hsm::testing::SoftwareRootOfTrust>();
  KW_ASSERT_OK_AND_ASSIGN(
      auto server,
      Server::Start(config, {.store = std::make_shared<keystore::MemoryKeyStore>("dev"),
                             .root = root}));
  const int port = server->http_port();
  EXPECT_EQ(Get(port, "/readyz").status, 200);

  root->StallHealthChecks();
  // More readiness checks at once than the listener has threads.
  std::vector<std::future<Answer>> ready;
  for (int i = 0; i < 6; ++i) {
    ready.push_back(std::async(std::launch::async, [port] { return Get(port, "/readyz"); }));
  }
  const Answer health = Get(port, "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok\n");
  const Answer metrics = Get(port, "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.body, HasSubstr("\nkeyward_ready 0\n"));
  for (auto& f : ready) {
    const Answer a = f.get();
    EXPECT_EQ(a.status, 503);
    EXPECT_THAT(a.body, HasSubstr("no answer to a health check"));
  }
  // One probe waits on the HSM, not one per request.
  EXPECT_EQ(root->health_checks_waiting(), 1);

  root->Release();
  Answer after;
  for (int i = 0; i < 100 && after.status != 200; ++i) {
    after = Get(port, "/readyz");
    if (after.status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(after.status, 200) << after.body;
  EXPECT_EQ(Get(port, "/nope").status, 404);
  httplib::Client http("127.0.0.1", port);
  auto post = http.Post("/healthz", "x", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  server->Shutdown(absl::Seconds(1));
}

}  // namespace
}  // namespace keyward::server
