// The fixture of keywardd's attacker-side tests (issue 16): a real
// keywardd over mutual TLS, attacked by a principal with no rights
// ("mallory") and by ones with rights; RawClient sends any bytes to any
// method.
#ifndef KEYWARD_SERVER_SECURITY_E2E_FIXTURE_H_
#define KEYWARD_SERVER_SECURITY_E2E_FIXTURE_H_

#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "audit/testing/log_files.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "dev/dev_ca.h"
#include "gtest/gtest.h"
#include "testing/test_client.h"
#include "nlohmann/json.hpp"
#include "testing/dev_server.h"
#include "testing/status_matchers.h"

namespace keyward {

inline constexpr char kMallory[] = "spiffe://keyward.dev/mallory";
inline constexpr char kGranter[] = "spiffe://keyward.dev/granter";

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
  // Sends `request` and calls `done` with the status on gRPC's thread, as
  // soon as the answer arrives (a client that sends its next call at once).
  void CallAsync(const std::string& method, const std::string& request,
                 std::function<void(grpc::Status)> done) {
    struct Pending {
      grpc::ClientContext ctx;
      grpc::ByteBuffer req, resp;
    };
    auto* p = new Pending();
    p->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Slice slice(request);
    p->req = grpc::ByteBuffer(&slice, 1);
    stub_->UnaryCall(&p->ctx, absl::StrCat("/keyward.v1.KeyManagement/", method),
                     grpc::StubOptions(), &p->req, &p->resp,
                     [p, done = std::move(done)](grpc::Status s) {
                       delete p;
                       done(std::move(s));
                     });
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
    testing::WriteFileOrDie(ca_file, testing::ReadFileOrDie(ca_file) + ca->cert_pem());
    for (const char* who : {"mallory", "granter"}) {
      KW_ASSERT_OK_AND_ASSIGN(dev::PemPair p,
                              ca->IssueClient(who, absl::StrCat("spiffe://keyward.dev/", who)));
      testing::WriteFileOrDie(server_->File(absl::StrCat("certs/", who, ".pem")), p.cert);
      testing::WriteFileOrDie(server_->File(absl::StrCat("certs/", who, ".key")), p.key);
      ::chmod(server_->File(absl::StrCat("certs/", who, ".key")).c_str(), 0600);
      std::string config = testing::ReadFileOrDie(server_->app_config());
      config = absl::StrReplaceAll(config, {{"certs/app.", absl::StrCat("certs/", who, ".")}});
      testing::WriteFileOrDie(server_->File(absl::StrCat(who, ".yaml")), config);
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
    return RawClient(testing::ReadFileOrDie(server_->File("certs/ca.pem")),
                     testing::ReadFileOrDie(server_->File(absl::StrCat("certs/", who, ".pem"))),
                     testing::ReadFileOrDie(server_->File(absl::StrCat("certs/", who, ".key"))),
                     server_->port());
  }
  void SetPolicy(const std::string& yaml) {
    testing::WriteFileOrDie(server_->File("new-policy.yaml"), yaml);
    testing::ProcessResult r = server_->Cli({"policy", "set", server_->File("new-policy.yaml")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  std::vector<nlohmann::json> Records() {
    std::vector<nlohmann::json> out;
    for (absl::string_view line : absl::StrSplit(
             audit::testing::ReadLogText(server_->File("audit")), '\n', absl::SkipEmpty())) {
      out.push_back(nlohmann::json::parse(line));
    }
    return out;
  }
  std::vector<std::string> RawRecordLines() {
    std::vector<std::string> out;
    for (absl::string_view line : absl::StrSplit(
             audit::testing::ReadLogText(server_->File("audit")), '\n', absl::SkipEmpty())) {
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

}  // namespace keyward

#endif  // KEYWARD_SERVER_SECURITY_E2E_FIXTURE_H_
