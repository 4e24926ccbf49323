// End to end: a real keywardd (SQLite + SoftHSM in a temporary directory,
// made by `keyward dev init`) on loopback, driven by the SDK and the CLI.
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "dev/dev_ca.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/test_client.h"
#include "keyward/encryptor.h"
#include "keyward/errors.h"
#include "keyward/message.h"
#include "keyward/v1/keyward.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "testing/e2e_fixture.h"
#include "testing/dev_server.h"
#include "testing/status_matchers.h"

namespace keyward {
namespace {

using ::keyward::testing::DevServer;
using ::keyward::testing::ProcessResult;
using ::keyward::testing::ReadFileOrDie;
using ::keyward::testing::RunProcess;
using ::keyward::testing::StatusIs;
using ::keyward::testing::WriteFileOrDie;
using ::testing::HasSubstr;
using Json = nlohmann::json;


TEST_F(E2eTest, EveryCliCommandsHappyPath) {
  Json info = CliJson({"server-info", "--json"});
  EXPECT_EQ(info["environment"], "dev");
  EXPECT_EQ(info["principal"], "spiffe://keyward.dev/admin");
  EXPECT_TRUE(info["hsm_software"].get<bool>());

  Json created = CliJson({"key", "create", "payments/cards", "--rotation-period", "90d",
                          "--label", "team=payments", "--json"});
  EXPECT_EQ(created["primary_version"], 1);
  EXPECT_EQ(created["rotation_period"], "90d");
  EXPECT_EQ(created["labels"]["team"], "payments");
  CliJson({"key", "create", "other", "--protection", "hsm-resident", "--json"});

  ProcessResult list = server_->Cli({"key", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(std::count(list.out.begin(), list.out.end(), '\n'), 2);
  Json described = CliJson({"key", "describe", "payments/cards", "--json"});
  EXPECT_EQ(described["name"], "payments/cards");

  // encrypt as the app, inspect, decrypt
  const std::string plain = server_->File("plain.txt");
  WriteFileOrDie(plain, "card 4111 1111 1111 1111");
  ProcessResult enc = server_->Cli({"encrypt", "--key", "payments/cards", "--context",
                                    "tenant=acme", "-o", server_->File("msg.kw"), plain},
                                   server_->app_config());
  ASSERT_EQ(enc.exit_code, 0) << enc.err;
  Json inspected = CliJson({"inspect", "--json", server_->File("msg.kw")});
  EXPECT_EQ(inspected["key_name"], "payments/cards");
  EXPECT_EQ(inspected["key_version"], 1);
  EXPECT_EQ(inspected["environment"], "dev");
  ProcessResult dec = server_->Cli({"decrypt", "--context", "tenant=acme",
                                    server_->File("msg.kw")},
                                   server_->app_config());
  ASSERT_EQ(dec.exit_code, 0) << dec.err;
  EXPECT_EQ(dec.out, "card 4111 1111 1111 1111");

  // rotate, rewrap, the message now names version 2 and still decrypts
  Json rotated = CliJson({"key", "rotate", "payments/cards", "--json"});
  EXPECT_EQ(rotated["primary_version"], 2);
  const std::string body_before = ReadFileOrDie(server_->File("msg.kw")).substr(
      inspected["header_bytes"].get<size_t>());
  Json rewrapped = CliJson({"rewrap", "--json", server_->File("msg.kw")});
  EXPECT_TRUE(rewrapped[0]["ok"].get<bool>()) << rewrapped.dump();
  Json after = CliJson({"inspect", "--json", server_->File("msg.kw")});
  EXPECT_EQ(after["key_version"], 2);
  EXPECT_EQ(ReadFileOrDie(server_->File("msg.kw")).substr(after["header_bytes"].get<size_t>()),
            body_before);
  dec = server_->Cli({"decrypt", server_->File("msg.kw")}, server_->app_config());
  EXPECT_EQ(dec.out, "card 4111 1111 1111 1111") << dec.err;

  // version administration
  EXPECT_EQ(CliJson({"key", "disable-version", "payments/cards", "1", "--force", "--json"})["versions"][0]["state"],
            "disabled");
  EXPECT_EQ(CliJson({"key", "enable-version", "payments/cards", "1", "--json"})["versions"][0]["state"],
            "enabled");
  // Version 1 decrypted a moment ago: the retirement gate refuses, --force
  // goes past it (and is audited).
  ProcessResult gated = server_->Cli({"key", "destroy-version", "payments/cards", "1", "--wait", "1h"});
  EXPECT_EQ(gated.exit_code, 5);
  EXPECT_THAT(gated.err, HasSubstr("within the quiet period"));
  Json destroying = CliJson({"key", "destroy-version", "payments/cards", "1", "--wait", "1h",
                             "--force", "--json"});
  EXPECT_EQ(destroying["versions"][0]["state"], "pending-destruction");
  // Cancelling restores the state before (enabled), not "disabled".
  EXPECT_EQ(CliJson({"key", "cancel-destroy", "payments/cards", "1", "--json"})["versions"][0]["state"],
            "enabled");
  // A wait of zero is a wait below the minimum like any other, not "the
  // default of 30 days"; the documented exit code for a refused request.
  ProcessResult zero = server_->Cli(
      {"key", "destroy-version", "payments/cards", "1", "--wait", "0s", "--force"});
  EXPECT_EQ(zero.exit_code, 3) << zero.err;
  EXPECT_THAT(zero.err, HasSubstr("at least"));
  EXPECT_EQ(CliJson({"key", "describe", "payments/cards", "--json"})["versions"][0]["state"],
            "enabled");
  EXPECT_EQ(CliJson({"key", "update", "payments/cards", "--rotation-period", "30d",
                     "--remove-label", "team", "--json"})["rotation_period"],
            "30d");
  Json dk = CliJson({"datakey", "--key", "payments/cards", "--context", "a=b"});
  std::string raw;
  ASSERT_TRUE(absl::Base64Unescape(dk["plaintext"].get<std::string>(), &raw));
  EXPECT_EQ(raw.size(), 32u);
}

TEST_F(E2eTest, SdkRoundTripsAndConcurrentEncryptsShareOneDataKey) {
  auto admin = Connect(server_->admin_config());
  ASSERT_NE(admin, nullptr);
  KW_ASSERT_OK(admin->CreateKey("k").status());
  auto app = Connect(server_->app_config());
  ASSERT_NE(app, nullptr);
  EncryptorOptions options;
  options.key_name = "k";
  KW_ASSERT_OK_AND_ASSIGN(std::shared_ptr<Encryptor> encryptor_owner,
                          Encryptor::Create(app, options));
  Encryptor& encryptor = *encryptor_owner;
  const EncryptionContext ctx{{"tenant", "acme"}};
  std::vector<std::string> messages(16);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] {
      auto m = encryptor.Encrypt(absl::StrCat("record ", i), ctx);
      if (!m.ok()) {
        ++failures;
        return;
      }
      messages[i] = *m;
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  EXPECT_EQ(encryptor.Stats().encrypt_cache_misses, 1u);
  EXPECT_EQ(encryptor.Stats().encrypt_cache_hits, 15u);
  KW_ASSERT_OK_AND_ASSIGN(KeyInfo key, admin->GetKey("k"));
  // The drill sample's wrap, and one GenerateDataKey for 16 messages.
  EXPECT_EQ(key.versions[0].data_keys_issued, 2u) << "one GenerateDataKey for 16 messages";
  for (int i = 0; i < 16; ++i) {
    KW_ASSERT_OK_AND_ASSIGN(Decrypted back_opened, encryptor.Decrypt(messages[i], ctx));
    SecretData& back = back_opened.plaintext;
    EXPECT_EQ(back.AsStringView(), absl::StrCat("record ", i));
  }
  EXPECT_EQ(encryptor.Stats().decrypt_cache_misses, 1u);
  // Streams and small payloads.
  std::string big(300'000, 'x');
  StringInputStream in(big);
  std::string sealed;
  StringOutputStream out(&sealed);
  KW_ASSERT_OK(encryptor.EncryptStream(in, out, ctx));
  KW_ASSERT_OK_AND_ASSIGN(Decrypted back_opened, encryptor.Decrypt(sealed, ctx));
  SecretData& back = back_opened.plaintext;
  EXPECT_EQ(back.AsStringView(), big);
  KW_ASSERT_OK_AND_ASSIGN(std::string small, app->Encrypt("k", "tiny", ctx));
  KW_ASSERT_OK_AND_ASSIGN(SecretData tiny, app->Decrypt(small, ctx));
  EXPECT_EQ(tiny.AsStringView(), "tiny");
  // Batch data keys.
  KW_ASSERT_OK_AND_ASSIGN(auto batch, app->GenerateDataKeys("k", ctx, 1000));
  std::vector<std::pair<std::string, EncryptionContext>> requests;
  for (const auto& g : batch) requests.push_back({g.encrypted.ciphertext, ctx});
  requests.push_back({"garbage", ctx});
  KW_ASSERT_OK_AND_ASSIGN(auto results, app->DecryptDataKeys(requests));
  ASSERT_EQ(results.size(), 1001u);
  for (size_t i = 0; i < 1000; ++i) {
    ASSERT_TRUE(results[i].ok());
    EXPECT_TRUE(ConstantTimeEquals(*results[i], batch[i].plaintext));
  }
  EXPECT_EQ(GetErrorCode(results[1000].status()), ErrorCode::kMalformedHeader);
  // Typed errors survive the wire.
  auto wrong = app->DecryptDataKey(batch[0].encrypted.ciphertext, {{"tenant", "globex"}});
  EXPECT_EQ(GetErrorCode(wrong.status()), ErrorCode::kContextMismatch);
  EXPECT_THAT(app->GetKey("missing"), StatusIs(absl::StatusCode::kNotFound));
}

// A gRPC channel with the dev CA as trust anchor and an optional client
// identity, bypassing the SDK's own checks.
std::unique_ptr<v1::KeyManagement::Stub> RawStub(DevServer& s, const std::string& cert,
                                                 const std::string& key) {
  std::vector<grpc::experimental::IdentityKeyCertPair> identity;
  if (!cert.empty()) identity.push_back({key, cert});
  auto provider = identity.empty()
                      ? std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
                            ReadFileOrDie(s.File("certs/ca.pem")))
                      : std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
                            ReadFileOrDie(s.File("certs/ca.pem")), identity);
  grpc::experimental::TlsChannelCredentialsOptions tls;
  tls.set_certificate_provider(provider);
  tls.watch_root_certs();
  if (!identity.empty()) tls.watch_identity_key_cert_pairs();
  return v1::KeyManagement::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", s.port()), grpc::experimental::TlsCredentials(tls)));
}

TEST_F(E2eTest, ClientsWithoutAValidCertificateAreRefusedAtTheTlsLayer) {
  // No certificate at all.
  auto anonymous = RawStub(*server_, "", "");
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::ServerInfo info;
  grpc::Status s = anonymous->GetServerInfo(&ctx, {}, &info);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  // A certificate from another CA.
  KW_ASSERT_OK_AND_ASSIGN(auto other_ca, dev::DevCa::Create("intruder"));
  KW_ASSERT_OK_AND_ASSIGN(auto intruder,
                          other_ca->IssueClient("admin", "spiffe://keyward.dev/admin"));
  auto forged = RawStub(*server_, intruder.cert, intruder.key);
  grpc::ClientContext ctx2;
  ctx2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  s = forged->GetServerInfo(&ctx2, {}, &info);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  // The real admin certificate works through the same path.
  auto admin = RawStub(*server_, ReadFileOrDie(server_->File("certs/admin.pem")),
                       ReadFileOrDie(server_->File("certs/admin.key")));
  grpc::ClientContext ctx3;
  s = admin->GetServerInfo(&ctx3, {}, &info);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(info.principal(), "spiffe://keyward.dev/admin");
}

TEST_F(E2eTest, Tls12IsRefused) {
  auto handshake = [&](const char* version) {
    return RunProcess({"/usr/bin/openssl", "s_client", "-connect",
                       absl::StrCat("127.0.0.1:", server_->port()), version, "-alpn", "h2",
                       "-cert", server_->File("certs/admin.pem"), "-key",
                       server_->File("certs/admin.key"), "-CAfile",
                       server_->File("certs/ca.pem")},
                      "\n");
  };
  ProcessResult v12 = handshake("-tls1_2");
  EXPECT_THAT(v12.out, HasSubstr("Cipher is (NONE)"));
  ProcessResult v13 = handshake("-tls1_3");
  EXPECT_THAT(v13.out, HasSubstr("TLSv1.3"));
  EXPECT_THAT(v13.out, ::testing::Not(HasSubstr("Cipher is (NONE)")));
  EXPECT_THAT(server_->log(), HasSubstr("unsupported protocol"));
}

TEST_F(E2eTest, OversizedRequestsAreRefused) {
  auto app = Connect(server_->app_config());
  auto admin = Connect(server_->admin_config());
  KW_ASSERT_OK(admin->CreateKey("k").status());
  auto too_big = app->Encrypt("k", std::string(5 << 20, 'x'), {});
  EXPECT_THAT(too_big, StatusIs(absl::StatusCode::kResourceExhausted));
  auto over_limit = app->Encrypt("k", std::string((64 << 10) + 1, 'x'), {});
  EXPECT_EQ(GetErrorCode(over_limit.status()), ErrorCode::kLimitExceeded);
}

TEST_F(E2eTest, RestartKeepsKeysAndMessages) {
  auto admin = Connect(server_->admin_config());
  KW_ASSERT_OK(admin->CreateKey("k").status());
  EncryptorOptions options;
  options.key_name = "k";
  std::string v1_message;
  {
    auto app = Connect(server_->app_config());
    KW_ASSERT_OK_AND_ASSIGN(std::shared_ptr<Encryptor> e_owner,
                            Encryptor::Create(app, options));
    Encryptor& e = *e_owner;
    KW_ASSERT_OK_AND_ASSIGN(v1_message, e.Encrypt("before restart", {{"t", "1"}}));
  }
  KW_ASSERT_OK(admin->RotateKey("k").status());
  admin.reset();
  EXPECT_EQ(server_->Stop(), 0) << server_->log();
  EXPECT_THAT(server_->log(), HasSubstr("stopped"));
  KW_ASSERT_OK(server_->Start());
  auto app = Connect(server_->app_config());
  KW_ASSERT_OK_AND_ASSIGN(std::shared_ptr<Encryptor> e_owner,
                          Encryptor::Create(app, options));
  Encryptor& e = *e_owner;
  KW_ASSERT_OK_AND_ASSIGN(Decrypted back_opened, e.Decrypt(v1_message, {{"t", "1"}}));
  SecretData& back = back_opened.plaintext;
  EXPECT_EQ(back.AsStringView(), "before restart");
  KW_ASSERT_OK_AND_ASSIGN(std::string v2_message, e.Encrypt("after", {}));
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(v2_message));
  EXPECT_EQ(info.key.key_version, 2u);
}

TEST_F(E2eTest, EnvironmentMismatchAndBadConfigsAreRefused) {
  auto options = LoadClientConfig(server_->admin_config());
  ASSERT_TRUE(options.ok());
  options->environment = "production";
  auto client = testing::Client::Connect(*options);
  EXPECT_EQ(GetErrorCode(client.status()), ErrorCode::kEnvironmentMismatch);
  EXPECT_THAT(client, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("'dev'")));

  std::string config = ReadFileOrDie(server_->File("keywardd.yaml"));
  const std::string broken_path = server_->File("broken.yaml");
  WriteFileOrDie(broken_path, config.substr(0, config.find("tls:")));
  ProcessResult r = RunProcess({KEYWARDD, "--config", broken_path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("tls"));
  EXPECT_THAT(r.err, HasSubstr("refusing to start"));
}

TEST_F(E2eTest, SighupPicksUpNewCertificates) {
  auto serial = [&] {
    ProcessResult r = RunProcess(
        {"/bin/sh", "-c",
         absl::StrCat("echo | /usr/bin/openssl s_client -connect 127.0.0.1:", server_->port(),
                      " -tls1_3 -alpn h2 -cert ", server_->File("certs/admin.pem"), " -key ",
                      server_->File("certs/admin.key"), " -CAfile ",
                      server_->File("certs/ca.pem"),
                      " 2>/dev/null | /usr/bin/openssl x509 -noout -serial")});
    return r.out;
  };
  const std::string before = serial();
  ASSERT_THAT(before, HasSubstr("serial="));
  // A new server certificate from a new CA, with the client CA kept: the
  // admin trusts the new CA for this check.
  KW_ASSERT_OK_AND_ASSIGN(auto ca, dev::DevCa::Create("rotated"));
  KW_ASSERT_OK_AND_ASSIGN(auto cert, ca->IssueServer("keywardd", {"localhost"}, {"127.0.0.1"}));
  WriteFileOrDie(server_->File("certs/server.pem.new"), cert.cert);
  WriteFileOrDie(server_->File("certs/server.key.new"), cert.key);
  ::chmod(server_->File("certs/server.key.new").c_str(), 0600);
  ::rename(server_->File("certs/server.key.new").c_str(), server_->File("certs/server.key").c_str());
  ::rename(server_->File("certs/server.pem.new").c_str(), server_->File("certs/server.pem").c_str());
  server_->Signal(SIGHUP);
  std::string after;
  for (int i = 0; i < 50 && (after = serial()) == before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(after, before);
  EXPECT_THAT(server_->log(), HasSubstr("sighup: certificates checked"));
}

}  // namespace
}  // namespace keyward
