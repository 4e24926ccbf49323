#include "server/config.h"

#include <sys/stat.h>

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "testing/subprocess.h"

namespace keyward::server {
namespace {

using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kGood[] = R"(environment: staging
listen: 127.0.0.1:7443
http_listen: 127.0.0.1:7444
storage:
  sqlite: data/keys.db
hsm:
  module: /usr/lib/softhsm/libsofthsm2.so
  token_label: t
  pin_file: pin
tls:
  cert: server.pem
  key: server.key
  client_ca: ca.pem
limits:
  max_request_bytes: 1048576
keys:
  default_protection: hsm-resident
  min_destruction_wait: 2h
policy: policy.yaml
audit:
  dir: audit
  max_wait: 500ms
)";

class ConfigTest : public ::testing::Test {
 protected:
  absl::StatusOr<ServerConfig> Load(const std::string& text) {
    const std::string path = dir_.File("keywardd.yaml");
    std::ofstream(path) << text;
    return LoadServerConfig(path);
  }
  std::string Replace(std::string text, const std::string& from, const std::string& to) {
    text.replace(text.find(from), from.size(), to);
    return text;
  }
  ::keyward::testing::TempDir dir_;
};

TEST_F(ConfigTest, ReadsEveryFieldAndResolvesRelativePaths) {
  KW_ASSERT_OK_AND_ASSIGN(ServerConfig c, Load(kGood));
  EXPECT_EQ(c.environment, "staging");
  EXPECT_EQ(c.sqlite_path, dir_.File("data/keys.db"));
  EXPECT_EQ(c.hsm.pin_file, dir_.File("pin"));
  EXPECT_EQ(c.hsm.root_key_label, "keyward-root/staging");
  EXPECT_EQ(c.tls.client_ca, dir_.File("ca.pem"));
  EXPECT_EQ(c.limits.max_request_bytes, 1048576);
  EXPECT_EQ(c.limits.max_concurrent_requests, 1024);
  EXPECT_EQ(c.default_protection, keystore::KekProtection::kHsmResident);
  EXPECT_EQ(c.min_destruction_wait, absl::Hours(2));
  EXPECT_EQ(c.policy_path, dir_.File("policy.yaml"));
  EXPECT_EQ(c.audit.dir, dir_.File("audit"));
  EXPECT_FALSE(c.audit.in_memory);
  EXPECT_EQ(c.audit.max_wait, absl::Milliseconds(500));
  EXPECT_EQ(c.audit.checkpoint_interval, absl::Seconds(60));
}

TEST_F(ConfigTest, EveryMistakeNamesItsField) {
  struct Case {
    std::string from, to, field;
  };
  for (const Case& c : std::vector<Case>{
           {"environment: staging", "environment: Staging!", "environment"},
           {"listen: 127.0.0.1:7443", "listen: nowhere", "listen"},
           {"listen: 127.0.0.1:7443\n", "", "listen: is required"},
           {"  pin_file: pin", "  pin_env: X\n  pin_file: pin", "hsm.pin_file"},
           {"  pin_file: pin", "", "hsm.pin_file"},
           {"  max_request_bytes: 1048576", "  max_request_bytes: lots", "limits.max_request_bytes"},
           {"  default_protection: hsm-resident", "  default_protection: vault", "keys.default_protection"},
           {"  min_destruction_wait: 2h", "  min_destruction_wait: soon", "keys.min_destruction_wait"},
           {"  token_label: t", "  token_label: t\n  alow_software_hsm: true", "hsm.alow_software_hsm"},
           {"policy: policy.yaml\n", "", "policy: is required"},
           {"  dir: audit\n", "", "audit.dir: is required"},
           {"  dir: audit\n", "  in_memory: true\n", "benchmark environments"},
           {"  max_wait: 500ms", "  max_wait: 1ms", "audit.max_wait"},
           {"  max_wait: 500ms", "  max_wait: 5x", "audit.max_wait"},
       }) {
    auto result = Load(Replace(kGood, c.from, c.to));
    EXPECT_THAT(result, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.field)))
        << c.to;
  }
  std::string no_tls = kGood;
  no_tls = no_tls.substr(0, no_tls.find("tls:")) + "keys:\n  min_destruction_wait: 2h\n";
  EXPECT_THAT(Load(no_tls), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("mutual TLS 1.3")));
  std::string no_audit = kGood;
  no_audit = no_audit.substr(0, no_audit.find("audit:"));
  EXPECT_THAT(Load(no_audit), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("every request is audited")));
  KW_EXPECT_OK(Load(Replace(Replace(kGood, "environment: staging", "environment: bench-1"),
                            "  dir: audit\n", "  in_memory: true\n"))
                   .status());
  EXPECT_THAT(Load("environment: [unclosed"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("YAML")));
  EXPECT_THAT(LoadServerConfig(dir_.File("missing.yaml")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("dev init")));
}

TEST_F(ConfigTest, FileChecksCatchMissingAndExposedSecrets) {
  KW_ASSERT_OK_AND_ASSIGN(ServerConfig c, Load(kGood));
  EXPECT_THAT(CheckConfigFiles(c), StatusIs(absl::StatusCode::kNotFound,
                                            HasSubstr("tls.cert")));
  for (const char* f : {"server.pem", "ca.pem"}) std::ofstream(dir_.File(f)) << "x";
  std::ofstream(dir_.File("server.key")) << "x";
  ::chmod(dir_.File("server.key").c_str(), 0644);
  EXPECT_THAT(CheckConfigFiles(c), StatusIs(absl::StatusCode::kPermissionDenied,
                                            HasSubstr("chmod 600")));
}

}  // namespace
}  // namespace keyward::server
