// keywardd's metrics, logs and readiness, end to end: the exposition passes
// promtool, every family the operator guide documents is there, key names
// appear only where configured, no secret reaches the logs or the metrics,
// and readiness follows the audit store and the HSM.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "audit/testing/log_files.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keyward/encryptor.h"
#include "testing/e2e_fixture.h"
#include "testing/subprocess.h"

namespace keyward {
namespace {

using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

class ObservabilityTest : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    // JSON logs at debug (one line per request), and only pay/* key names
    // as metric labels.
    ASSERT_EQ(server_->Stop(), 0);
    std::string config = testing::ReadFileOrDie(server_->File("keywardd.yaml"));
    const size_t at = config.find("metrics:");
    ASSERT_NE(at, std::string::npos);
    config.resize(at);
    config += "metrics:\n  key_labels: [\"pay/*\"]\nlog:\n  format: json\n  level: debug\n";
    std::ofstream(server_->File("keywardd.yaml")) << config;
    KW_ASSERT_OK(server_->Start());
  }
  std::string Metrics() {
    const std::string r = server_->HttpGet("/metrics");
    EXPECT_EQ(r.rfind("200 ", 0), 0u) << r.substr(0, 200);
    return r.size() > 4 ? r.substr(4) : "";
  }
  // Polls until `pred` holds (readiness follows the writer and the HSM).
  template <typename P>
  bool Eventually(P pred) {
    for (int i = 0; i < 100; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
};

constexpr char kCanaryValue[] = "CANARY-ctx-7f3a9c";
constexpr char kCanaryPlaintext[] = "CANARY-plaintext-51d2e8";

TEST_F(ObservabilityTest, MetricsAreValidCompleteAndBounded) {
  auto admin = Connect(server_->admin_config());
  auto app = Connect(server_->app_config());
  KW_ASSERT_OK(admin->CreateKey("pay/cards").status());
  KW_ASSERT_OK(admin->CreateKey("hr/salaries").status());
  const EncryptionContext context = {{"tenant", kCanaryValue}};
  KW_ASSERT_OK_AND_ASSIGN(std::string m, app->Encrypt("pay/cards", kCanaryPlaintext, context));
  KW_ASSERT_OK(app->Decrypt(m, context).status());
  KW_ASSERT_OK(app->GenerateDataKey("hr/salaries", context).status());
  EXPECT_THAT(app->CreateKey("denied"), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(app->Decrypt(m, {{"tenant", "wrong"}}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // A batch rewrap after a rotation: the data key cache counts.
  KW_ASSERT_OK(admin->RotateKey("pay/cards").status());
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(m));
  KW_ASSERT_OK(app->RewrapMessageHeaders({m.substr(0, info.header_bytes),
                                           m.substr(0, info.header_bytes)})
                   .status());

  const std::string text = Metrics();
  // Prometheus's own checker accepts it.
  if (std::system("command -v promtool >/dev/null 2>&1") == 0) {
    const std::string path = server_->File("metrics.txt");
    std::ofstream(path) << text;
    FILE* p = popen(("promtool check metrics < " + path + " 2>&1").c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[256];
    while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
    EXPECT_EQ(pclose(p), 0) << out;
    EXPECT_EQ(out, "") << "promtool findings";
  } else {
    ADD_FAILURE() << "promtool is missing (Debian package prometheus; scripts/install-deps "
                     "installs it)";
  }
  for (const char* family :
       {"keyward_rpc_requests_total", "keyward_rpc_duration_seconds",
        "keyward_kek_operation_duration_seconds", "keyward_hsm_call_duration_seconds",
        "keyward_data_keys_issued_total", "keyward_data_key_decrypts_total",
        "keyward_policy_denials_total", "keyward_audit_queue_depth",
        "keyward_audit_batch_records", "keyward_audit_fsync_duration_seconds",
        "keyward_audit_records_total", "keyward_audit_unavailable",
        "keyward_key_primary_age_seconds", "keyward_dek_cache_hits_total",
        "keyward_dek_cache_misses_total", "keyward_kek_cache_hits_total",
        "keyward_kek_cache_misses_total", "process_resident_memory_bytes", "process_open_fds",
        "process_threads", "keyward_ready", "keyward_build_info"}) {
    EXPECT_THAT(text, HasSubstr(absl::StrCat("# TYPE ", family, " "))) << family;
  }
  EXPECT_THAT(text, HasSubstr("keyward_rpc_requests_total{method=\"Encrypt\",code=\"OK\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("keyward_rpc_requests_total{method=\"CreateKey\","
                              "code=\"PERMISSION_DENIED\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("keyward_policy_denials_total{operation=\"create-key\"} 1\n"));
  // Key names only where configured: pay/* by name, the rest as "other".
  // Each key's drill sample and one data key.
  EXPECT_THAT(text, HasSubstr("keyward_data_keys_issued_total{key=\"pay/cards\","
                              "version=\"1\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("keyward_data_keys_issued_total{key=\"other\",version=\"\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("keyward_key_primary_age_seconds{key=\"pay/cards\"}"));
  EXPECT_THAT(text, Not(HasSubstr("hr/salaries")));
  // Two headers sharing one data key: one unwrap and one cache hit.
  EXPECT_THAT(text, HasSubstr("keyward_dek_cache_hits_total 1\n"));
  EXPECT_THAT(text, HasSubstr("keyward_dek_cache_misses_total 1\n"));
  EXPECT_THAT(text, HasSubstr("keyward_rpc_requests_total{method=\"Decrypt\","
                              "code=\"FAILED_PRECONDITION\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("keyward_ready 1\n"));
  EXPECT_THAT(text, HasSubstr("keyward_audit_unavailable 0\n"));
  // No context value, plaintext or principal ever becomes a label.
  EXPECT_THAT(text, Not(HasSubstr(kCanaryValue)));
  EXPECT_THAT(text, Not(HasSubstr(kCanaryPlaintext)));
  EXPECT_THAT(text, Not(HasSubstr("spiffe://")));
}

TEST_F(ObservabilityTest, LogsAreStructuredCarryRequestIdsAndNoSecrets) {
  auto admin = Connect(server_->admin_config());
  auto app = Connect(server_->app_config());
  KW_ASSERT_OK(admin->CreateKey("pay/cards").status());
  const EncryptionContext context = {{"tenant", kCanaryValue}};
  KW_ASSERT_OK_AND_ASSIGN(std::string m, app->Encrypt("pay/cards", kCanaryPlaintext, context));
  KW_ASSERT_OK_AND_ASSIGN(SecretData pt, app->Decrypt(m, context));
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey dk, app->GenerateDataKey("pay/cards", context));
  EXPECT_FALSE(app->Decrypt(m, {{"tenant", kCanaryValue}, {"extra", kCanaryValue}}).ok());
  EXPECT_FALSE(app->CreateKey("denied").ok());
  const std::string dek_hex = absl::BytesToHexString(dk.plaintext.AsStringView());
  admin.reset();
  app.reset();
  ASSERT_EQ(server_->Stop(), 0);

  const std::string log = server_->log();
  std::set<std::string> logged_ids;
  int requests = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
    if (line.front() != '{') continue;  // the start banner on stdout
    Json j = Json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    ASSERT_TRUE(j.contains("time") && j.contains("level") && j.contains("event")) << line;
    if (j["event"] == "request") {
      ++requests;
      ASSERT_TRUE(j.contains("request_id") && j.contains("method") && j.contains("code"));
      logged_ids.insert(j["request_id"].get<std::string>());
    }
  }
  EXPECT_GE(requests, 6);
  // The same request ids as the audit records.
  int matched = 0;
  for (absl::string_view line : absl::StrSplit(
           audit::testing::ReadLogText(server_->File("audit")), '\n', absl::SkipEmpty())) {
    Json r = Json::parse(line);
    if (logged_ids.count(r["request_id"].get<std::string>())) ++matched;
  }
  EXPECT_GE(matched, 6);
  // Redaction: no context value, plaintext or data key, in any form.
  EXPECT_THAT(log, Not(HasSubstr(kCanaryValue)));
  EXPECT_THAT(log, Not(HasSubstr(kCanaryPlaintext)));
  EXPECT_THAT(log, Not(HasSubstr(absl::BytesToHexString(kCanaryPlaintext))));
  EXPECT_THAT(log, Not(HasSubstr(dek_hex)));
  EXPECT_THAT(log, HasSubstr("\"event\":\"request\""));
  EXPECT_THAT(log, HasSubstr("\"code\":\"PERMISSION_DENIED\""));
}

TEST_F(ObservabilityTest, ReadinessFollowsTheAuditStore) {
  auto admin = Connect(server_->admin_config());
  KW_ASSERT_OK(admin->CreateKey("pay/cards").status());
  const std::string records = audit::testing::OpenSegmentPath(server_->File("audit"));
  ASSERT_EQ(::rename(records.c_str(), (records + ".saved").c_str()), 0);
  ASSERT_EQ(::symlink("/dev/full", records.c_str()), 0);
  // A request fails its audit write; readiness, its gauge and the reason flip.
  EXPECT_THAT(admin->GetKey("pay/cards"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(Eventually([&] { return server_->HttpGet("/readyz").rfind("503", 0) == 0; }));
  EXPECT_THAT(server_->HttpGet("/readyz"), HasSubstr("audit log not writable"));
  const std::string down = Metrics();
  EXPECT_THAT(down, HasSubstr("keyward_ready 0\n"));
  EXPECT_THAT(down, HasSubstr("keyward_audit_unavailable 1\n"));
  // The disk recovers; so does readiness, by itself.
  ASSERT_EQ(::unlink(records.c_str()), 0);
  ASSERT_EQ(::rename((records + ".saved").c_str(), records.c_str()), 0);
  EXPECT_TRUE(Eventually([&] { return server_->HttpGet("/readyz").rfind("200", 0) == 0; }));
  EXPECT_THAT(Metrics(), HasSubstr("keyward_ready 1\n"));
}

// The SDK's metrics hook: what an application forwards to its own metrics
// library.
class CountingObserver final : public Observer {
 public:
  void OnOperation(Operation op, absl::Duration latency, bool ok) override {
    std::lock_guard<std::mutex> lock(mu);
    ++(ok ? ok_ops : failed_ops)[op];
    if (latency <= absl::ZeroDuration()) ++non_positive_latencies;
  }
  void OnCache(Operation op, bool hit) override {
    std::lock_guard<std::mutex> lock(mu);
    ++(hit ? hits : misses)[op];
  }
  std::mutex mu;
  std::map<Operation, int> ok_ops, failed_ops, hits, misses;
  int non_positive_latencies = 0;
};

TEST_F(ObservabilityTest, SdkObserverSeesLatencyAndCacheHits) {
  auto admin = Connect(server_->admin_config());
  auto app = Connect(server_->app_config());
  KW_ASSERT_OK(admin->CreateKey("pay/cards").status());
  auto observer_owner = std::make_shared<CountingObserver>();
  CountingObserver& observer = *observer_owner;
  EncryptorOptions options;
  options.key_name = "pay/cards";
  options.observer = observer_owner;
  KW_ASSERT_OK_AND_ASSIGN(std::shared_ptr<Encryptor> e_owner,
                          Encryptor::Create(app, options));
  Encryptor& e = *e_owner;
  const EncryptionContext context = {{"tenant", "t1"}};
  std::vector<std::string> messages;
  for (int i = 0; i < 3; ++i) {
    KW_ASSERT_OK_AND_ASSIGN(std::string m, e.Encrypt("record", context));
    messages.push_back(std::move(m));
  }
  for (const std::string& m : messages) KW_ASSERT_OK(e.Decrypt(m, context).status());
  EXPECT_FALSE(e.Decrypt("not a message", context).ok());
  using Op = Observer::Operation;
  EXPECT_EQ(observer.ok_ops[Op::kEncrypt], 3);
  EXPECT_EQ(observer.ok_ops[Op::kDecrypt], 3);
  EXPECT_EQ(observer.failed_ops[Op::kDecrypt], 1);
  EXPECT_EQ(observer.non_positive_latencies, 0);
  // One data key for the three messages: one miss each way, then hits.
  EXPECT_EQ(observer.misses[Op::kEncrypt], 1);
  EXPECT_EQ(observer.hits[Op::kEncrypt], 2);
  EXPECT_EQ(observer.misses[Op::kDecrypt], 1);
  EXPECT_EQ(observer.hits[Op::kDecrypt], 2);
}

// The token's storage disappears (as a network HSM partitioned away would):
// readiness flips with the reason, and comes back with the token.
TEST_F(ObservabilityTest, ReadinessFollowsTheHsm) {
  auto admin = Connect(server_->admin_config());
  KW_ASSERT_OK(admin->CreateKey("pay/cards").status());
  EXPECT_EQ(server_->HttpGet("/readyz").rfind("200", 0), 0u);
  const std::string tokens = server_->File("hsm/tokens");
  ASSERT_EQ(::rename(tokens.c_str(), (tokens + ".away").c_str()), 0);
  // (Readiness asks the HSM at most once a second.)
  EXPECT_TRUE(Eventually([&] { return server_->HttpGet("/readyz").rfind("503", 0) == 0; }));
  EXPECT_THAT(server_->HttpGet("/readyz"), HasSubstr("not ready: HSM: the root key cannot be used"));
  EXPECT_THAT(Metrics(), HasSubstr("keyward_ready 0\n"));
  // New key material needs the HSM: refused, not half-made.
  EXPECT_THAT(admin->CreateKey("pay/new"), StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_EQ(::rename((tokens + ".away").c_str(), tokens.c_str()), 0);
  EXPECT_TRUE(Eventually([&] { return server_->HttpGet("/readyz").rfind("200", 0) == 0; }));
  KW_EXPECT_OK(admin->CreateKey("pay/new").status());
  KW_EXPECT_OK(admin->RotateKey("pay/cards").status());
  EXPECT_THAT(Metrics(), HasSubstr("keyward_ready 1\n"));
}

}  // namespace
}  // namespace keyward
