// keywardd from the attacker's side (issue 16), part 1: sizes and counts are
// checked before any other work, and refusals are audited.  Each test is one
// limit or one decision rule, and fails on a keywardd without it.  The
// fixture is in security_e2e_fixture.h.
#include <cstdio>
#include <future>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "keyward/v1/keyward.pb.h"
#include "server/security_e2e_fixture.h"

namespace keyward {
namespace {

using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;
using Json = nlohmann::json;

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

}  // namespace
}  // namespace keyward
