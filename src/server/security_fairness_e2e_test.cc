// keywardd from the attacker's side (issue 16), part 2: fairness — no
// principal starves another, saturation shows, failed handshakes are
// summarized.  Each test is one limit or one decision rule, and fails on a
// keywardd without it.  The fixture is in security_e2e_fixture.h.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "keyward/v1/keyward.pb.h"
#include "server/security_e2e_fixture.h"

namespace keyward {
namespace {

using ::keyward::testing::ReadFileOrDie;
using ::keyward::testing::WriteFileOrDie;
using ::testing::HasSubstr;
using Json = nlohmann::json;

// --- 3. Fairness --------------------------------------------------------------

TEST_F(SecurityTest, OnePrincipalCannotHoldMoreThanItsShareOfRequests) {
  KW_ASSERT_OK(admin_->CreateKey("victim").status());
  // Maximal valid requests (10,000 data keys each) from app, 200 at once
  // over four connections (one connection carries at most 64 at once).
  v1::BatchGenerateDataKeysRequest big;
  big.set_key_name("victim");
  big.set_count(10000);
  std::vector<RawClient> connections;
  for (int c = 0; c < 4; ++c) connections.push_back(Raw("app"));
  std::atomic<int> exhausted{0}, ok{0};
  std::vector<std::thread> flood;
  for (int i = 0; i < 200; ++i) {
    flood.emplace_back([&, i] {
      RawClient::Reply r =
          connections[i % 4].Call("BatchGenerateDataKeys", big, absl::Seconds(120));
      if (r.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
        ++exhausted;
        EXPECT_THAT(r.status.error_message(), HasSubstr("its share"));
      } else if (r.status.ok()) {
        ++ok;
      }
    });
  }
  // Meanwhile the admin is served.
  for (int i = 0; i < 20; ++i) {
    KW_EXPECT_OK(admin_->GenerateDataKey("victim", {}).status());
  }
  for (auto& t : flood) t.join();
  std::printf("200 concurrent 10,000-key batches from one principal: %d served, %d refused "
              "over its share\n",
              ok.load(), exhausted.load());
  EXPECT_GT(exhausted.load(), 0);
  EXPECT_GT(ok.load(), 0);
  const std::string metrics = server_->HttpGet("/metrics");
  EXPECT_THAT(metrics, HasSubstr("keyward_requests_refused_for_share_total{scope=\"principal\"}"));
}

// The share is what a client sees: a client that keeps exactly its share
// in flight, sending each next call the moment it has an answer, is never
// refused (a call stops counting when it is answered, not when keywardd
// has freed it; docs/decisions/0036).
TEST_F(SecurityTest, AClientKeepingExactlyItsShareInFlightIsNeverRefused) {
  KW_ASSERT_OK(admin_->CreateKey("victim").status());
  v1::GenerateDataKeyRequest req;
  req.set_key_name("victim");
  (*req.mutable_encryption_context())["t"] = "1";
  const std::string bytes = req.SerializeAsString();
  RawClient connection = Raw("app");  // one connection carries 64 at once
  constexpr int kShare = 64;          // limits.principal_max_requests
  constexpr int kCalls = 8000;
  std::atomic<int> sent{0}, ok{0}, refused{0}, other{0}, finished{0};
  std::promise<void> all_done;
  // Each of kShare lanes sends its next call from the callback of the
  // last, the moment its answer is in.
  std::function<void()> next = [&] {
    if (sent.fetch_add(1) >= kCalls) {
      if (finished.fetch_add(1) + 1 == kShare) all_done.set_value();
      return;
    }
    connection.CallAsync("GenerateDataKey", bytes, [&](grpc::Status s) {
      if (s.ok()) {
        ++ok;
      } else if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
        ++refused;
      } else {
        ++other;
      }
      next();
    });
  };
  for (int i = 0; i < kShare; ++i) next();
  ASSERT_EQ(all_done.get_future().wait_for(std::chrono::seconds(120)), std::future_status::ready);
  std::printf("%d calls, %d in flight, each sent when the last was answered: %d served, "
              "%d refused, %d failed\n",
              kCalls, kShare, ok.load(), refused.load(), other.load());
  EXPECT_EQ(refused.load(), 0);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(ok.load(), kCalls);
}

// Saturation shows: when keywardd as a whole refuses work, /readyz says so
// (a load balancer takes the replica out) and keyward_saturated is 1; one
// principal over its own share does not make keywardd unready.
TEST_F(SecurityTest, ASaturatedServerSaysSoOnReadyzAndInMetrics) {
  KW_ASSERT_OK(admin_->CreateKey("victim").status());
  EXPECT_THAT(server_->HttpGet("/readyz"), ::testing::StartsWith("200"));
  admin_.reset();
  app_.reset();
  ASSERT_EQ(server_->Stop(), 0);
  std::string config = ReadFileOrDie(server_->File("keywardd.yaml"));
  ASSERT_NE(config.find("max_concurrent_requests: 1024"), std::string::npos);
  absl::StrReplaceAll({{"max_concurrent_requests: 1024", "max_concurrent_requests: 6"}}, &config);
  WriteFileOrDie(server_->File("keywardd.yaml"), config);
  KW_ASSERT_OK(server_->Start());
  v1::BatchGenerateDataKeysRequest big;
  big.set_key_name("victim");
  big.set_count(10000);
  std::vector<RawClient> connections;
  for (int c = 0; c < 2; ++c) connections.push_back(Raw(c == 0 ? "app" : "admin"));
  std::atomic<int> saturated{0};
  std::vector<std::thread> flood;
  for (int i = 0; i < 24; ++i) {
    flood.emplace_back([&, i] {
      RawClient::Reply r = connections[i % 2].Call("BatchGenerateDataKeys", big, absl::Seconds(120));
      if (r.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
          absl::StrContains(r.status.error_message(), "saturated")) {
        ++saturated;
      }
    });
  }
  for (auto& t : flood) t.join();
  ASSERT_GT(saturated.load(), 0) << "24 batches at once should overflow 6 requests";
  const std::string ready = server_->HttpGet("/readyz");
  EXPECT_THAT(ready, ::testing::StartsWith("503"));
  EXPECT_THAT(ready, HasSubstr("saturated"));
  EXPECT_THAT(server_->HttpGet("/metrics"), HasSubstr("keyward_saturated 1"));
  EXPECT_THAT(server_->HttpGet("/metrics"),
              HasSubstr("keyward_requests_refused_for_share_total{scope=\"server\"}"));
}

// The test the issue asks for: while one principal floods keywardd with
// maximal valid requests (10,000-key batches) and maximal invalid ones
// (3.5 MB contexts), another principal's calls all succeed.  The flood runs
// in a process of its own at the lowest CPU priority, standing in for a
// client on another machine (on this 2-core box its own TLS work would
// otherwise compete with the victim's client for the CPU).  The victim's
// latency is reported, not asserted: bench/fairness_bench.sh measures it
// with repetitions.
TEST_F(SecurityTest, AFloodFromOnePrincipalDoesNotStarveAnother) {
  KW_ASSERT_OK(admin_->CreateKey("victim").status());
  auto victim_p99 = [&](int n, int* failures) {
    std::vector<double> ms;
    for (int i = 0; i < n; ++i) {
      const absl::Time t0 = absl::Now();
      if (!admin_->GenerateDataKey("victim", {{"t", "1"}}).ok()) ++*failures;
      ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    }
    std::sort(ms.begin(), ms.end());
    return ms[static_cast<size_t>(ms.size() * 0.99) - 1];
  };
  int unloaded_failures = 0;
  (void)victim_p99(50, &unloaded_failures);  // warm up
  const double unloaded = victim_p99(400, &unloaded_failures);
  ASSERT_EQ(unloaded_failures, 0);

  const std::string out = server_->File("flood.out");
  const pid_t flood = ::fork();
  if (flood == 0) {
    ::setpriority(PRIO_PROCESS, 0, 19);
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 1);
    const std::string port = absl::StrCat(server_->port());
    const std::string ca = server_->File("certs/ca.pem"), cert = server_->File("certs/app.pem"),
                      key = server_->File("certs/app.key");
    ::execl(FLOOD_CLIENT, FLOOD_CLIENT, port.c_str(), ca.c_str(), cert.c_str(), key.c_str(),
            "mixed", "8", "5", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  int loaded_failures = 0;
  const double loaded = victim_p99(400, &loaded_failures);
  int status = 0;
  ::waitpid(flood, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const std::string flood_result = ReadFileOrDie(out);
  std::printf("fairness: victim p99 %.2f ms unloaded, %.2f ms under a flood (%s) = %.2fx; "
              "victim failures: %d\n",
              unloaded, loaded, std::string(absl::StripTrailingAsciiWhitespace(flood_result)).c_str(),
              loaded / unloaded, loaded_failures);
  EXPECT_EQ(loaded_failures, 0);
  EXPECT_THAT(flood_result, HasSubstr("calls "));
}

// TLS handshakes that fail are recorded, but a flood of them is summarized.
TEST_F(SecurityTest, FailedHandshakesAreSummarizedBeyondABurst) {
  KW_ASSERT_OK(admin_->CreateKey("victim").status());
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  for (int i = 0; i < 100; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>("\x02h2"), 3);
    (void)SSL_connect(ssl);  // no client certificate: keywardd refuses
    char buf[16];
    (void)SSL_read(ssl, buf, sizeof(buf));
    SSL_free(ssl);
    ::close(fd);
  }
  SSL_CTX_free(ctx);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_TRUE(Healthy());
  admin_.reset();  // idle connections would hold up a graceful stop
  app_.reset();
  ASSERT_EQ(server_->Stop(), 0);  // writes the pending summary
  int one_by_one = 0;
  uint64_t summarized = 0;
  for (const Json& r : Records()) {
    if (r["operation"] == "tls-handshake") ++one_by_one;
    if (r["operation"] == "refused-before-reading" && r["principal"] == "tls-handshake") {
      summarized += std::stoull(r["detail"].get<std::string>());
    }
  }
  std::printf("100 failed handshakes: %d recorded one by one, %llu summarized\n", one_by_one,
              static_cast<unsigned long long>(summarized));
  EXPECT_GT(one_by_one, 0);
  EXPECT_LE(one_by_one, 20);
  EXPECT_GE(static_cast<uint64_t>(one_by_one) + summarized, 90u);
}

}  // namespace
}  // namespace keyward
