// keywardd from the attacker's side (issue 16): a real keywardd, attacked by
// a principal with no rights ("mallory") and by ones with rights, over
// mutual TLS.  Each test is one limit or one decision rule, and fails on a
// keywardd without it.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <future>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "audit/testing/forgery.h"
#include "dev/dev_ca.h"
#include "format/encrypt_materials.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/test_client.h"
#include "keyward/encryptor.h"
#include "format/header.h"
#include "crypto/signature.h"
#include "absl/strings/escaping.h"
#include "keyward/errors.h"
#include "keyward/message.h"
#include "keyward/v1/keyward.pb.h"
#include "kms/data_key_blob.h"
#include "nlohmann/json.hpp"
#include "testing/dev_server.h"
#include "testing/status_matchers.h"

namespace keyward {
namespace {

using ::keyward::testing::ReadFileOrDie;
using ::keyward::testing::StatusIs;
using ::keyward::testing::WriteFileOrDie;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

constexpr char kMallory[] = "spiffe://keyward.dev/mallory";
constexpr char kGranter[] = "spiffe://keyward.dev/granter";

// A connection that sends whatever bytes it is given to a method.
class RawClient {
 public:
  RawClient(const std::string& ca, const std::string& cert, const std::string& key, int port) {
    auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
        ca, std::vector<grpc::experimental::IdentityKeyCertPair>{{key, cert}});
    grpc::experimental::TlsChannelCredentialsOptions tls;
    tls.set_certificate_provider(provider);
    tls.watch_root_certs();
    tls.watch_identity_key_cert_pairs();
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetMaxSendMessageSize(64 << 20);
    // A connection of its own: keywardd allows principal_max_requests
    // streams per connection, so only several connections can go over it.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    channel_ = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                         grpc::experimental::TlsCredentials(tls), args);
    stub_ = std::make_unique<grpc::GenericStub>(channel_);
  }
  struct Reply {
    grpc::Status status;
    std::string bytes;
    std::string error_code;  // keyward-error-code trailer
  };
  Reply Call(const std::string& method, const std::string& request,
             absl::Duration deadline = absl::Seconds(30)) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(deadline));
    grpc::Slice slice(request);
    grpc::ByteBuffer req(&slice, 1), resp;
    std::promise<grpc::Status> done;
    stub_->UnaryCall(&ctx, absl::StrCat("/keyward.v1.KeyManagement/", method),
                     grpc::StubOptions(), &req, &resp,
                     [&done](grpc::Status s) { done.set_value(std::move(s)); });
    Reply r;
    r.status = done.get_future().get();
    std::vector<grpc::Slice> slices;
    if (resp.Dump(&slices).ok()) {
      for (const auto& s : slices) r.bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    auto it = ctx.GetServerTrailingMetadata().find("keyward-error-code");
    if (it != ctx.GetServerTrailingMetadata().end()) {
      r.error_code.assign(it->second.data(), it->second.size());
    }
    return r;
  }
  template <typename Message>
  Reply Call(const std::string& method, const Message& m,
             absl::Duration deadline = absl::Seconds(30)) {
    return Call(method, m.SerializeAsString(), deadline);
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::GenericStub> stub_;
};

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = testing::DevServer::Init(KEYWARD_CLI, KEYWARDD);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    // Principals of a second CA that keywardd also trusts: mallory (no
    // rights in the dev policy) and granter (rights set per test).
    KW_ASSERT_OK_AND_ASSIGN(auto ca, dev::DevCa::Create("second"));
    const std::string ca_file = server_->File("certs/ca.pem");
    WriteFileOrDie(ca_file, ReadFileOrDie(ca_file) + ca->cert_pem());
    for (const char* who : {"mallory", "granter"}) {
      KW_ASSERT_OK_AND_ASSIGN(dev::PemPair p,
                              ca->IssueClient(who, absl::StrCat("spiffe://keyward.dev/", who)));
      WriteFileOrDie(server_->File(absl::StrCat("certs/", who, ".pem")), p.cert);
      WriteFileOrDie(server_->File(absl::StrCat("certs/", who, ".key")), p.key);
      ::chmod(server_->File(absl::StrCat("certs/", who, ".key")).c_str(), 0600);
      std::string config = ReadFileOrDie(server_->app_config());
      config = absl::StrReplaceAll(config, {{"certs/app.", absl::StrCat("certs/", who, ".")}});
      WriteFileOrDie(server_->File(absl::StrCat(who, ".yaml")), config);
      ::chmod(server_->File(absl::StrCat(who, ".yaml")).c_str(), 0600);
    }
    KW_ASSERT_OK(server_->Start());
    admin_ = Connect(server_->admin_config());
    app_ = Connect(server_->app_config());
    ASSERT_NE(admin_, nullptr);
    ASSERT_NE(app_, nullptr);
  }
  std::shared_ptr<testing::Client> Connect(const std::string& config) {
    auto options = LoadClientConfig(config);
    EXPECT_TRUE(options.ok()) << options.status();
    auto client = testing::Client::Connect(*options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }
  RawClient Raw(const std::string& who) {
    return RawClient(ReadFileOrDie(server_->File("certs/ca.pem")),
                     ReadFileOrDie(server_->File(absl::StrCat("certs/", who, ".pem"))),
                     ReadFileOrDie(server_->File(absl::StrCat("certs/", who, ".key"))),
                     server_->port());
  }
  void SetPolicy(const std::string& yaml) {
    WriteFileOrDie(server_->File("new-policy.yaml"), yaml);
    testing::ProcessResult r = server_->Cli({"policy", "set", server_->File("new-policy.yaml")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  std::vector<Json> Records() {
    std::vector<Json> out;
    for (absl::string_view line : absl::StrSplit(
             ReadFileOrDie(server_->File("audit/records.log")), '\n', absl::SkipEmpty())) {
      out.push_back(Json::parse(line));
    }
    return out;
  }
  std::vector<std::string> RawRecordLines() {
    std::vector<std::string> out;
    for (absl::string_view line : absl::StrSplit(
             ReadFileOrDie(server_->File("audit/records.log")), '\n', absl::SkipEmpty())) {
      out.emplace_back(line);
    }
    return out;
  }
  // keywardd's peak resident memory so far, in MiB (VmHWM).
  long PeakRssMib() {
    std::ifstream status(absl::StrCat("/proc/", server_->pid(), "/status"));
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6)) / 1024;
    }
    return -1;
  }
  bool Healthy() {
    auto dk = app_->GenerateDataKey("victim", {{"t", "1"}});
    return dk.ok() && !dk->encrypted.ciphertext.empty();
  }

  std::unique_ptr<testing::DevServer> server_;
  std::shared_ptr<testing::Client> admin_, app_;
};

// --- 1. Sizes and counts before any other work ---------------------------------

// The review's request: about 330,000 entries in 3.5 MB.
v1::GenerateDataKeyRequest HugeContextRequest() {
  v1::GenerateDataKeyRequest req;
  req.set_key_name("victim");
  auto& ctx = *req.mutable_encryption_context();
  for (int i = 0; i < 330000; ++i) ctx[absl::StrCat(i)] = "";
  return req;
}

TEST_F(SecurityTest, AHugeContextIsRefusedBeforeAnyWorkAndLeavesABoundedRecord) {
  KW_ASSERT_OK(admin_->CreateKey("victim").status());
  const std::string huge = HugeContextRequest().SerializeAsString();
  ASSERT_GT(huge.size(), 3000000u);
  ASSERT_LT(huge.size(), 4u << 20);
  // Three at once, from a principal with no rights at all.
  RawClient mallory = Raw("mallory");
  std::vector<std::future<RawClient::Reply>> attacks;
  for (int i = 0; i < 3; ++i) {
    attacks.push_back(std::async(std::launch::async,
                                 [&] { return mallory.Call("GenerateDataKey", huge); }));
  }
  for (auto& a : attacks) {
    RawClient::Reply r = a.get();
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << r.status.error_message();
    EXPECT_EQ(r.error_code, "limit-exceeded");
    EXPECT_THAT(r.status.error_message(), HasSubstr("encryption_context has more than 64"));
  }
  // Everyone else is served as before.
  EXPECT_TRUE(Healthy());
  // The refusals' records are bounded summaries: sizes and a digest, no
  // context, nothing of the 3.5 MB.
  int refused = 0;
  for (const std::string& line : RawRecordLines()) {
    if (line.find(kMallory) == std::string::npos) continue;
    ++refused;
    EXPECT_LT(line.size(), 1500u) << line.substr(0, 200);
    Json r = Json::parse(line);
    EXPECT_EQ(r["operation"], "generate-data-key");
    EXPECT_EQ(r["decision"], "none");
    EXPECT_EQ(r["error_code"], "limit-exceeded");
    EXPECT_TRUE(r["context"].empty());
    EXPECT_THAT(r["detail"].get<std::string>(), HasSubstr("sha256"));
  }
  EXPECT_EQ(refused, 3);
}

TEST_F(SecurityTest, BatchItemsAreCountedBeforeAnyIsParsed) {
  KW_ASSERT_OK(admin_->CreateKey("victim").status());
  // 2,000,000 empty items: two bytes each on the wire, 4 MB.
  std::string batch;
  batch.reserve(4000000);
  for (int i = 0; i < 2000000; ++i) batch.append("\x0a\x00", 2);
  const long before = PeakRssMib();
  RawClient mallory = Raw("mallory");
  std::vector<std::future<RawClient::Reply>> attacks;
  for (int i = 0; i < 3; ++i) {
    attacks.push_back(std::async(std::launch::async,
                                 [&] { return mallory.Call("BatchDecryptDataKeys", batch); }));
  }
  for (auto& a : attacks) {
    RawClient::Reply r = a.get();
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << r.status.error_message();
    EXPECT_EQ(r.error_code, "limit-exceeded");
    EXPECT_THAT(r.status.error_message(), HasSubstr("requests has more than 10000 items"));
  }
  const long after = PeakRssMib();
  std::printf("keywardd peak RSS: %ld MiB before, %ld MiB after three 2,000,000-item batches\n",
              before, after);
  // Parsing them would take over a gigabyte; counting them takes nothing.
  EXPECT_LT(after, 300) << "keywardd's memory grew with the attacker's item count";
  EXPECT_TRUE(Healthy());
  // An empty batch is not a batch.
  EXPECT_EQ(mallory.Call("BatchDecryptDataKeys", std::string()).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(app_->DecryptDataKeys({}), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(SecurityTest, OversizedRequestsAreRefusedAndAudited) {
  RawClient mallory = Raw("mallory");
  RawClient::Reply r = mallory.Call("Encrypt", std::string(5 << 20, 'x'));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << r.status.error_message();
  EXPECT_EQ(r.error_code, "limit-exceeded");
  bool recorded = false;
  for (const Json& rec : Records()) {
    if (rec["principal"] == kMallory && rec["operation"] == "encrypt") {
      recorded = true;
      EXPECT_THAT(rec["detail"].get<std::string>(), HasSubstr("limits.max_request_bytes"));
    }
  }
  EXPECT_TRUE(recorded);
}

TEST_F(SecurityTest, RepeatedFieldsEverywhereHaveTheirLimits) {
  RawClient app = Raw("app");
  v1::BatchRewrapMessageHeadersRequest headers;
  for (int i = 0; i < 10001; ++i) headers.add_headers("x");
  EXPECT_EQ(app.Call("BatchRewrapMessageHeaders", headers).error_code, "limit-exceeded");
  v1::CreateGrantRequest grant;
  for (int i = 0; i < 33; ++i) grant.add_operations("decrypt");
  EXPECT_EQ(Raw("admin").Call("CreateGrant", grant).error_code, "limit-exceeded");
  v1::UpdateKeyRequest update;
  update.set_name(std::string(300, 'k'));
  EXPECT_EQ(Raw("admin").Call("UpdateKey", update).error_code, "limit-exceeded");
  v1::DataSetReport report;
  report.set_key_name("k");
  for (uint32_t v = 1; v <= 10001; ++v) (*report.mutable_rows_per_version())[v] = 1;
  EXPECT_EQ(Raw("admin").Call("ReportDataSet", report).error_code, "limit-exceeded");
}

// A request that does not parse, and a method that does not exist, are
// recorded like any other request.
TEST_F(SecurityTest, UnparsableRequestsAndUnknownMethodsAreAudited) {
  RawClient mallory = Raw("mallory");
  RawClient::Reply garbage = mallory.Call("GenerateDataKey", std::string("\xff\xff\xff\xff", 4));
  EXPECT_EQ(garbage.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(garbage.status.error_message(), HasSubstr("not a valid"));
  RawClient::Reply unknown = mallory.Call("StealAllKeys", std::string("x"));
  EXPECT_EQ(unknown.status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  // A string that is not UTF-8 is a parse failure too.
  v1::GetKeyRequest bad_utf8;
  std::string bytes = bad_utf8.SerializeAsString() + std::string("\x0a\x02\xc3\x28", 4);
  EXPECT_EQ(mallory.Call("GetKey", bytes).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  bool saw_garbage = false, saw_unknown = false;
  for (const Json& r : Records()) {
    if (r["principal"] != kMallory) continue;
    if (r["operation"] == "generate-data-key" && r["result"] == "INVALID_ARGUMENT") {
      saw_garbage = true;
      EXPECT_THAT(r["detail"].get<std::string>(), HasSubstr("refused before reading"));
    }
    if (r["operation"] == "unknown-method") {
      saw_unknown = true;
      EXPECT_THAT(r["detail"].get<std::string>(), HasSubstr("StealAllKeys"));
      EXPECT_EQ(r["result"], "UNIMPLEMENTED");
    }
  }
  EXPECT_TRUE(saw_garbage);
  EXPECT_TRUE(saw_unknown);
}

TEST_F(SecurityTest, ABatchOfMalformedItemsOnlyIsAuditedAsInvalidNotAsADenial) {
  RawClient mallory = Raw("mallory");
  v1::BatchDecryptDataKeysRequest req;
  for (int i = 0; i < 5; ++i) req.add_requests()->set_wrapped("not a wrapped key");
  RawClient::Reply r = mallory.Call("BatchDecryptDataKeys", req);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  int seen = 0;
  for (const Json& rec : Records()) {
    if (rec["principal"] != kMallory || rec["operation"] != "decrypt") continue;
    ++seen;
    EXPECT_EQ(rec["decision"], "none");
    EXPECT_EQ(rec["result"], "INVALID_ARGUMENT");
    EXPECT_THAT(rec["detail"].get<std::string>(), HasSubstr("5 malformed, 0 denied"));
  }
  EXPECT_EQ(seen, 1);
}

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

// --- 4–5. One key per decision; re-encryption is its own permission ---------------

constexpr char kVaultPolicy[] = R"(rules:
  - name: dev-admin
    principals: ["spiffe://keyward.dev/admin"]
    keys: ["*"]
    operations: ["*"]
  - name: app-data
    principals: ["spiffe://keyward.dev/app"]
    keys: ["*"]
    operations: [encrypt, generate-data-key, decrypt, rewrap, describe]
  - name: vault-is-off-limits
    effect: deny
    principals: ["spiffe://keyward.dev/app"]
    keys: ["vault/*"]
    operations: ["*"]
)";

// A message whose header names "demo" but whose data key was wrapped by
// "vault/x": the app is denied on vault/*, so keywardd must not unwrap it.
// `entry_claims`: rewrite the name inside the wrapped key (breaking its
// seal) to one that need not exist.
std::string CraftedMessage(testing::Client& admin, const std::string& header_key,
                           const std::string& entry_key, const std::string& entry_claims = "") {
  auto dk = admin.GenerateDataKey(entry_key, {{"t", "1"}});
  EXPECT_TRUE(dk.ok()) << dk.status();
  if (!entry_claims.empty()) {
    auto blob = kms::DecodeBlob(dk->encrypted.ciphertext);
    EXPECT_TRUE(blob.ok()) << blob.status();
    blob->key_name = entry_claims;
    dk->encrypted.ciphertext = kms::EncodeBlob(*blob);
  }
  format::EncryptionMaterials m;
  m.key = dk->key;
  m.key.key_name = header_key;
  m.key.key_version = 1;
  dk->encrypted.provider_info = header_key;  // the unauthenticated hint lies too
  m.data_keys = {dk->encrypted};
  m.data_key = &dk->plaintext;
  m.context = {{"t", "1"}};
  auto message = format::EncryptBytesWithMaterials(m, "vault secret");
  EXPECT_TRUE(message.ok()) << message.status();
  return *message;
}

TEST_F(SecurityTest, AMessageIsDecidedOnTheKeyItsDataKeyIsBoundTo) {
  SetPolicy(kVaultPolicy);
  KW_ASSERT_OK(admin_->CreateKey("demo").status());
  KW_ASSERT_OK(admin_->CreateKey("vault/x").status());
  const std::string crafted = CraftedMessage(*admin_, "demo", "vault/x");
  KW_ASSERT_OK_AND_ASSIGN(KeyInfo before, admin_->GetKey("vault/x"));
  const absl::Status decrypt = app_->Decrypt(crafted, {{"t", "1"}}).status();
  EXPECT_THAT(decrypt, StatusIs(absl::StatusCode::kInvalidArgument,
                                HasSubstr("not wrapped by key 'demo'")));
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(crafted));
  const absl::Status rewrap =
      app_->RewrapMessageHeader(crafted.substr(0, info.header_bytes), {}).status();
  EXPECT_EQ(rewrap.message(), decrypt.message());
  // Through the data key path the wrapped key names vault/x, and that is
  // the key decided on: denied.
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey vault_dk, admin_->GenerateDataKey("vault/x", {{"t", "1"}}));
  KW_ASSERT_OK_AND_ASSIGN(before, admin_->GetKey("vault/x"));
  EXPECT_THAT(app_->DecryptDataKey(vault_dk.encrypted.ciphertext, {{"t", "1"}}),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("vault-is-off-limits")));
  KW_ASSERT_OK_AND_ASSIGN(KeyInfo after, admin_->GetKey("vault/x"));
  EXPECT_EQ(after.versions[0].decrypts, before.versions[0].decrypts)
      << "keywardd unwrapped a vault/x data key for a principal denied on vault/*";
  EXPECT_EQ(after.versions[0].last_decrypt, before.versions[0].last_decrypt);
  // One indistinguishable error: an entry naming a key that does not exist
  // at all gets the same answer as one naming a key that exists and is
  // forbidden.
  const std::string ghost = CraftedMessage(*admin_, "demo", "vault/x", "vault/ghost");
  EXPECT_EQ(app_->Decrypt(ghost, {{"t", "1"}}).status().message(), decrypt.message());
  EXPECT_THAT(admin_->GetKey("vault/ghost"), StatusIs(absl::StatusCode::kNotFound));
  // The refused messages are recorded under the key their header names
  // (demo); vault/x appears only in the denial of the direct call.
  int demo_refusals = 0;
  for (const Json& r : Records()) {
    if (r["principal"] != "spiffe://keyward.dev/app") continue;
    if (r["key"] == "demo") {
      EXPECT_EQ(r["result"], "INVALID_ARGUMENT") << r.dump();
      ++demo_refusals;
    }
    if (r["key"] == "vault/x") {
      EXPECT_EQ(r["decision"], "deny") << r.dump();
      EXPECT_EQ(r["operation"], "decrypt") << r.dump();
    }
  }
  EXPECT_EQ(demo_refusals, 3) << "decrypt, rewrap and the ghost decrypt";
}

TEST_F(SecurityTest, DecryptingForReencryptionIsItsOwnPermission) {
  KW_ASSERT_OK(admin_->CreateKey("k").status());
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey dk, admin_->GenerateDataKey("k", {}));
  // The app may decrypt, but not hide its reads from the retirement gate.
  KW_ASSERT_OK_AND_ASSIGN(
      auto hidden, app_->DecryptDataKeys({{dk.encrypted.ciphertext, {}}}, /*for_reencryption=*/true));
  EXPECT_THAT(hidden[0], StatusIs(absl::StatusCode::kPermissionDenied));
  bool recorded = false;
  for (const Json& r : Records()) {
    if (r["principal"] == "spiffe://keyward.dev/app" && r["operation"] == "reencrypt") {
      recorded = true;
      EXPECT_EQ(r["decision"], "deny");
    }
  }
  EXPECT_TRUE(recorded);
  // The admin holds `reencrypt`: allowed, audited as such, and not a read.
  KW_ASSERT_OK_AND_ASSIGN(KeyInfo before, admin_->GetKey("k"));
  KW_ASSERT_OK_AND_ASSIGN(auto ok, admin_->DecryptDataKeys({{dk.encrypted.ciphertext, {}}}, true));
  KW_EXPECT_OK(ok[0].status());
  KW_ASSERT_OK_AND_ASSIGN(KeyInfo after, admin_->GetKey("k"));
  EXPECT_EQ(after.versions[0].last_decrypt, before.versions[0].last_decrypt);
}

// --- 7. The smaller ones ------------------------------------------------------

TEST_F(SecurityTest, KeyNamesAreCheckedOnEveryRequestAndNeverEchoed) {
  for (const std::string& name :
       {std::string("a/../b"), std::string("./a"), std::string("a/."), std::string("a//b")}) {
    absl::Status s = admin_->GetKey(name).status();
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument)) << name;
    EXPECT_THAT(s.message(), Not(HasSubstr(name))) << name;
    EXPECT_THAT(admin_->CreateKey(name), StatusIs(absl::StatusCode::kInvalidArgument)) << name;
  }
  EXPECT_THAT(admin_->GetKey(std::string(257, 'a')), StatusIs(absl::StatusCode::kInvalidArgument));
  // Errors that mention caller input quote a bounded, cleaned piece of it.
  const std::string op = std::string(60, 'x') + "\n\x1b[31m";
  KW_ASSERT_OK_AND_ASSIGN(auto unused, admin_->GetServerInfo());
  (void)unused;
  absl::Status s = admin_->TestPolicy(kMallory, "k", op, {}).status();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(s.message(), Not(HasSubstr("\x1b")));
}

TEST_F(SecurityTest, PermissionIsCheckedBeforeExistence) {
  // No rights: denied whether or not the grant exists.
  auto mallory = Connect(server_->File("mallory.yaml"));
  ASSERT_NE(mallory, nullptr);
  EXPECT_THAT(mallory->RevokeGrant("g-0000000000000000"),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(mallory->GetKey("no-such-key"), StatusIs(absl::StatusCode::kPermissionDenied));
  // The administrator learns that it does not exist.
  EXPECT_THAT(admin_->RevokeGrant("g-0000000000000000"),
              StatusIs(absl::StatusCode::kNotFound));
}

// --- 12. Grants stay within their creator's scope --------------------------------

TEST_F(SecurityTest, AGrantMustLieWithinItsCreatorsScope) {
  SetPolicy(absl::StrCat(R"(rules:
  - name: dev-admin
    principals: ["spiffe://keyward.dev/admin"]
    keys: ["*"]
    operations: ["*"]
  - name: granter
    principals: [")", kGranter, R"("]
    keys: ["g/?"]
    operations: [manage-grants]
)"));
  KW_ASSERT_OK(admin_->CreateKey("g/ab").status());
  auto granter = Connect(server_->File("granter.yaml"));
  ASSERT_NE(granter, nullptr);
  GrantSpec wide;
  wide.principal = "spiffe://keyward.dev/app";
  wide.key = "g/*";  // matches "g/?" as a name, but is far wider
  wide.operations = {"rotate-key"};
  wide.ttl = absl::Hours(1);
  wide.reason = "escape";
  EXPECT_THAT(granter->CreateGrant(wide), StatusIs(absl::StatusCode::kPermissionDenied));
  GrantSpec narrow = wide;
  narrow.key = "g/a";
  KW_EXPECT_OK(granter->CreateGrant(narrow).status());
  // Not to itself, unless the policy says so.
  GrantSpec self = narrow;
  self.principal = kGranter;
  EXPECT_THAT(granter->CreateGrant(self), StatusIs(absl::StatusCode::kPermissionDenied));
  // What the escape was for: the grantee may rotate what the narrow grant
  // names and nothing the refused wide one would have given it.
  KW_ASSERT_OK(admin_->CreateKey("g/a").status());
  KW_EXPECT_OK(app_->RotateKey("g/a").status());
  EXPECT_THAT(app_->RotateKey("g/ab"), StatusIs(absl::StatusCode::kPermissionDenied));
}

// Listing is decided key by key: a prefix the caller may list says nothing
// about the keys under it that a deny rule or a narrower pattern leaves out.
TEST_F(SecurityTest, ListingShowsOnlyTheKeysTheCallerMayList) {
  SetPolicy(R"(rules:
  - name: dev-admin
    principals: ["spiffe://keyward.dev/admin"]
    keys: ["*"]
    operations: ["*"]
  - name: app-lists-payments
    principals: ["spiffe://keyward.dev/app"]
    keys: ["payments/*", "q/?"]
    operations: [list-keys]
  - name: app-not-secrets
    effect: deny
    principals: ["spiffe://keyward.dev/app"]
    keys: ["payments/secret/*"]
    operations: ["*"]
)");
  for (const char* k : {"payments/cards", "payments/secret/root", "q/x", "q/xyz"}) {
    KW_ASSERT_OK(admin_->CreateKey(k).status());
  }
  auto names = [](const KeyList& list) {
    std::vector<std::string> out;
    for (const KeyInfo& k : list.keys) out.push_back(k.name);
    return out;
  };
  KW_ASSERT_OK_AND_ASSIGN(KeyList payments, app_->ListKeys("payments/"));
  EXPECT_THAT(names(payments), ElementsAre("payments/cards"));
  KW_ASSERT_OK_AND_ASSIGN(KeyList q, app_->ListKeys("q/x"));
  EXPECT_THAT(names(q), ElementsAre("q/x"));
  // One key per page: the hidden ones are skipped across pages too.
  std::vector<std::string> paged;
  std::string token;
  do {
    KW_ASSERT_OK_AND_ASSIGN(KeyList page, app_->ListKeys("payments/", 1, token));
    for (auto& n : names(page)) paged.push_back(n);
    token = page.next_page_token;
  } while (!token.empty());
  EXPECT_THAT(paged, ElementsAre("payments/cards"));
  KW_ASSERT_OK_AND_ASSIGN(KeyList all, admin_->ListKeys("payments/"));
  EXPECT_EQ(all.keys.size(), 2u);
  bool recorded = false;
  for (const Json& r : Records()) {
    if (r["operation"] == "list-keys" && r["principal"] == "spiffe://keyward.dev/app" &&
        r["detail"].get<std::string>().find("1 key(s) under the prefix not shown") == 0) {
      recorded = true;
    }
  }
  EXPECT_TRUE(recorded);
}

// --- 13. Policy changes leave a trace ----------------------------------------------

TEST_F(SecurityTest, PolicyChangesAreRecordedWithTheirDigests) {
  KW_ASSERT_OK_AND_ASSIGN(std::string current, admin_->GetPolicy());
  const std::string changed = current + "\n# changed by set\n";
  KW_ASSERT_OK(admin_->SetPolicy(changed).status());
  // A reload after someone edited the file.
  WriteFileOrDie(server_->File("policy.yaml"), changed + "# edited on disk\n");
  server_->Signal(SIGHUP);
  bool set = false, reloaded = false;
  for (int i = 0; i < 50 && !reloaded; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (const Json& r : Records()) {
      const std::string detail = r["detail"].get<std::string>();
      if (r["operation"] == "manage-policy" && detail.rfind("policy set: sha256:", 0) == 0) {
        set = true;
        EXPECT_EQ(r["principal"], "spiffe://keyward.dev/admin");
      }
      if (r["principal"] == "keywardd:sighup" && detail.find("policy reloaded") == 0) {
        reloaded = true;
        EXPECT_THAT(detail, HasSubstr("-> sha256:"));
      }
    }
  }
  EXPECT_TRUE(set);
  EXPECT_TRUE(reloaded);
  // A policy that leaves nobody able to manage the policy is refused.
  EXPECT_THAT(admin_->SetPolicy(R"(rules:
  - name: app-only
    principals: ["spiffe://keyward.dev/app"]
    keys: ["*"]
    operations: [decrypt]
)"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("manage-policy")));
  // A string where a list belongs is refused, not read as a one-item list.
  EXPECT_THAT(admin_->SetPolicy(R"(rules:
  - name: admin
    principals: "spiffe://keyward.dev/admin"
    keys: ["*"]
    operations: ["*"]
)"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("must be a list")));
}

// --- 11. Signed messages: readers who can decrypt cannot forge -------------------

TEST_F(SecurityTest, ReadersWhoCanDecryptCannotForgeSignedMessages) {
  SetPolicy(R"(rules:
  - name: dev-admin
    principals: ["spiffe://keyward.dev/admin"]
    keys: ["*"]
    operations: ["*"]
  - name: readers
    principals: ["spiffe://keyward.dev/app"]
    keys: ["signed/*"]
    operations: [decrypt, describe]
)");
  CreateKeyOptions signed_key;
  signed_key.suite = Suite::kAes256GcmHkdfSha256CommitEcdsaP384;
  KW_ASSERT_OK(admin_->CreateKey("signed/k", signed_key).status());
  // Even the writer cannot get a data key for an unsigned message under it.
  EXPECT_THAT(admin_->GenerateDataKey("signed/k", {{"t", "1"}}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("signed messages")));
  EncryptorOptions writer;
  writer.key_name = "signed/k";
  writer.format.suite = Suite::kAes256GcmHkdfSha256CommitEcdsaP384;
  KW_ASSERT_OK_AND_ASSIGN(std::shared_ptr<Encryptor> admin_encryptor_owner,
                          Encryptor::Create(admin_, writer));
  Encryptor& admin_encryptor = *admin_encryptor_owner;
  KW_ASSERT_OK_AND_ASSIGN(std::string genuine, admin_encryptor.Encrypt("pay 10", {{"t", "1"}}));
  KW_ASSERT_OK_AND_ASSIGN(std::shared_ptr<Encryptor> reader_owner,
                          Encryptor::Create(app_, EncryptorOptions{.key_name = "signed/k"}));
  Encryptor& reader = *reader_owner;
  KW_ASSERT_OK_AND_ASSIGN(Decrypted read_opened, reader.Decrypt(genuine, {{"t", "1"}}));
  SecretData& read = read_opened.plaintext;
  EXPECT_EQ(read.AsStringView(), "pay 10");

  // The reader holds the data key of the genuine message...
  std::string authenticated;
  KW_ASSERT_OK_AND_ASSIGN(format::Header h, format::ParseHeader(genuine, &authenticated));
  KW_ASSERT_OK_AND_ASSIGN(SecretData dek,
                          app_->DecryptDataKey(h.data_keys[0].ciphertext, h.context));
  auto forge = [&](Suite suite, EncryptionContext context, crypto::EcdsaP384Signer* signer) {
    format::EncryptionMaterials m;
    m.suite = suite;
    m.frame_size = h.frame_size;
    m.key = h.key;
    m.context = std::move(context);
    m.data_keys = h.data_keys;
    m.data_key = &dek;
    m.signer = signer;
    return format::EncryptBytesWithMaterials(m, "pay 1000");
  };
  // ...but cannot get one of its own (no generate-data-key)...
  EXPECT_THAT(app_->GenerateDataKey("signed/k", {}),
              StatusIs(absl::StatusCode::kPermissionDenied));
  // ...a message signed by a key of its own does not open: the wrapped data
  // key is bound to the writer's public key...
  KW_ASSERT_OK_AND_ASSIGN(auto forger, crypto::EcdsaP384Signer::Generate());
  EncryptionContext own = h.context;
  own[kSigningKeyContextKey] = absl::Base64Escape(forger->public_key());
  KW_ASSERT_OK_AND_ASSIGN(std::string signed_forgery,
                          forge(Suite::kAes256GcmHkdfSha256CommitEcdsaP384, own, forger.get()));
  EXPECT_FALSE(reader.Decrypt(signed_forgery, {{"t", "1"}}).ok());
  // ...and the same message unsigned is refused: an unsigned message may
  // not carry a signing key, and without it the data key does not unwrap.
  EncryptionContext bare = h.context;
  bare.erase(kSigningKeyContextKey);
  KW_ASSERT_OK_AND_ASSIGN(std::string unsigned_forgery,
                          forge(Suite::kAes256GcmHkdfSha256Commit, bare, nullptr));
  EXPECT_FALSE(reader.Decrypt(unsigned_forgery, {{"t", "1"}}).ok());
  std::string relabelled = genuine;
  relabelled[5] = 0x00;
  relabelled[6] = 0x01;
  EXPECT_THAT(reader.Decrypt(relabelled, {{"t", "1"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("signing key")));
  // The genuine message still reads, as do keywardd's own (signed) ones.
  KW_EXPECT_OK(reader.Decrypt(genuine, {{"t", "1"}}).status());
}

// --- 8. An audit log that cannot be rewritten and re-signed ---------------------

TEST_F(SecurityTest, ARewrittenAuditLogIsCaughtByTheVerifierAndByKeywardd) {
  // `keyward dev init` pinned the signing key in the client configs;
  // keywardd reports the same key.
  KW_ASSERT_OK_AND_ASSIGN(ClientOptions options, LoadClientConfig(server_->admin_config()));
  ASSERT_EQ(options.audit_checkpoint_key_fingerprint.size(), 64u);
  KW_ASSERT_OK_AND_ASSIGN(ServerInfo info, admin_->GetServerInfo());
  EXPECT_EQ(info.audit_checkpoint_key_fingerprint, options.audit_checkpoint_key_fingerprint);
  KW_ASSERT_OK(admin_->CreateKey("k").status());
  for (int i = 0; i < 25; ++i) KW_ASSERT_OK(app_->GenerateDataKey("k", {}).status());
  admin_.reset();  // idle connections would hold up a graceful stop
  app_.reset();
  ASSERT_EQ(server_->Stop(), 0);  // writes the final checkpoint
  const std::string dir = server_->File("audit");
  EXPECT_EQ(server_->Cli({"audit", "verify", "--log", dir}).exit_code, 0);
  // Without a pin, verify refuses to guess.
  EXPECT_EQ(testing::RunProcess({KEYWARD_CLI, "audit", "verify", "--log", dir}).exit_code, 2);
  // A pin that is not a key is bad input (exit 3), not a failed log (4).
  WriteFileOrDie(server_->File("garbage.pem"), "not a key\n");
  testing::ProcessResult bad_pin = testing::RunProcess(
      {KEYWARD_CLI, "audit", "verify", "--log", dir, "--checkpoint-key",
       server_->File("garbage.pem")});
  EXPECT_EQ(bad_pin.exit_code, 3) << bad_pin.err;
  EXPECT_THAT(bad_pin.err, HasSubstr("not a PEM public key"));

  // The attack: three records deleted, the chain rebuilt, the checkpoints
  // re-signed with the attacker's key, which is left in the directory.
  std::vector<std::string> lines = RawRecordLines();
  lines.erase(lines.begin() + 5, lines.begin() + 8);
  KW_ASSERT_OK(audit::testing::RewriteAndResign(dir, lines, "dev"));
  testing::ProcessResult verify = server_->Cli({"audit", "verify", "--log", dir});
  EXPECT_EQ(verify.exit_code, 4) << verify.out << verify.err;
  EXPECT_THAT(verify.err, HasSubstr("FAILED verification"));
  // keywardd will not sign it with the real key: it refuses to start.
  absl::Status start = server_->Start();
  EXPECT_FALSE(start.ok());
  EXPECT_THAT(server_->log(), HasSubstr("the audit log is not the one keywardd wrote"));
  // Moved aside (it is evidence), an empty directory is refused too: the
  // key store remembers the old log...
  ASSERT_EQ(::rename(dir.c_str(), server_->File("audit.evidence").c_str()), 0);
  EXPECT_FALSE(server_->Start().ok());
  // ...until the operator starts a new log deliberately, which the new log
  // records first thing after its start.
  KW_ASSERT_OK(server_->Start({"--new-audit-log"}));
  std::vector<Json> records = Records();
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records[0]["operation"], "start");
  EXPECT_THAT(records[0]["detail"].get<std::string>(), HasSubstr("NEW audit log started"));
  EXPECT_THAT(records[0]["detail"].get<std::string>(), HasSubstr("policy "));
}

// Deleting the key store's anchor must not let the log be cut back to an
// earlier checkpoint: keywardd refuses a log with records and no anchor
// until the operator adopts it on purpose.
TEST_F(SecurityTest, KeywarddRefusesALogWhoseAnchorWasRemoved) {
  KW_ASSERT_OK(admin_->CreateKey("a").status());
  admin_.reset();
  app_.reset();
  ASSERT_EQ(server_->Stop(), 0);
  testing::ProcessResult del = testing::RunProcess(
      {"/usr/bin/sqlite3", server_->File("data/keys.db"),
       "DELETE FROM sealed_secrets WHERE name = 'audit-checkpoint-anchor'"});
  ASSERT_EQ(del.exit_code, 0) << del.err;
  EXPECT_FALSE(server_->Start().ok());
  EXPECT_THAT(server_->log(), HasSubstr("holds no sealed checkpoint"));
  EXPECT_THAT(server_->log(), HasSubstr("--adopt-audit-log"));
  const size_t before = Records().size();
  KW_ASSERT_OK(server_->Start({"--adopt-audit-log"}));
  std::vector<Json> records = Records();
  ASSERT_GT(records.size(), before);
  EXPECT_EQ(records[before]["operation"], "start");
  EXPECT_THAT(records[before]["detail"].get<std::string>(),
              HasSubstr(absl::StrCat("audit log of ", before, " records adopted")));
  // Anchored again: the next start needs no flag, and cutting the log back
  // to its first genuine checkpoint (whose signature still verifies) is
  // caught by the new anchor.
  ASSERT_EQ(server_->Stop(), 0);
  KW_ASSERT_OK(server_->Start());
  ASSERT_EQ(server_->Stop(), 0);
  std::vector<std::string> checkpoints = absl::StrSplit(
      ReadFileOrDie(server_->File("audit/checkpoints.log")), '\n', absl::SkipEmpty());
  ASSERT_GE(checkpoints.size(), 2u);
  const uint64_t first = Json::parse(checkpoints[0])["tree_size"].get<uint64_t>();
  std::vector<std::string> lines = RawRecordLines();
  ASSERT_GT(lines.size(), first);
  lines.resize(first);
  WriteFileOrDie(server_->File("audit/records.log"), absl::StrJoin(lines, "\n") + "\n");
  WriteFileOrDie(server_->File("audit/checkpoints.log"), checkpoints[0] + "\n");
  EXPECT_FALSE(server_->Start().ok());
  EXPECT_THAT(server_->log(), HasSubstr("records were removed"));
}

}  // namespace
}  // namespace keyward
