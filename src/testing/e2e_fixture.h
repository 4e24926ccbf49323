// The fixture of keywardd's end-to-end tests: a fresh `keyward dev init`
// setup with keywardd started, and helpers to connect as its principals.
#ifndef KEYWARD_TESTING_E2E_FIXTURE_H_
#define KEYWARD_TESTING_E2E_FIXTURE_H_

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "keyward/connection.h"
#include "nlohmann/json.hpp"
#include "testing/dev_server.h"
#include "testing/status_matchers.h"
#include "testing/test_client.h"

namespace keyward {

class E2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = testing::DevServer::Init(KEYWARD_CLI, KEYWARDD);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    KW_ASSERT_OK(server_->Start());
  }
  std::shared_ptr<testing::Client> Connect(const std::string& config) {
    auto options = LoadClientConfig(config);
    EXPECT_TRUE(options.ok()) << options.status();
    auto client = testing::Client::Connect(*options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }
  nlohmann::json CliJson(std::vector<std::string> args, const std::string& config = "") {
    testing::ProcessResult r = server_->Cli(std::move(args), config);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out, nullptr, false);
  }
  std::unique_ptr<testing::DevServer> server_;
};

}  // namespace keyward

#endif  // KEYWARD_TESTING_E2E_FIXTURE_H_
