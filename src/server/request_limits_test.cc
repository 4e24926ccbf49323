#include "server/request_limits.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keyward/errors.h"
#include "keyward/v1/keyward.pb.h"
#include "testing/status_matchers.h"

namespace keyward::server {
namespace {

using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Every request of every method declares a limit on every field that can
// grow: a new field without one fails here, not in production.
TEST(RequestLimitsTest, EveryGrowableRequestFieldDeclaresItsLimit) {
  const auto* service =
      v1::GetServerInfoRequest::descriptor()->file()->FindServiceByName("KeyManagement");
  ASSERT_NE(service, nullptr);
  EXPECT_GT(service->method_count(), 30);
  for (int i = 0; i < service->method_count(); ++i) {
    const auto* method = service->method(i);
    EXPECT_THAT(FieldsWithoutLimits(*method->input_type()), IsEmpty()) << method->name();
  }
}

absl::Status Scan(const google::protobuf::Message& m, RequestShape* shape = nullptr,
                  WireLimits limits = {}) {
  RequestShape local;
  return ScanRequest(m.SerializeAsString(), *m.GetDescriptor(), limits,
                     shape != nullptr ? shape : &local);
}

TEST(RequestLimitsTest, CountsAndSizesAreCheckedWithoutParsing) {
  v1::GenerateDataKeyRequest ok;
  ok.set_key_name("k");
  for (int i = 0; i < 64; ++i) (*ok.mutable_encryption_context())[absl::StrCat(i)] = "v";
  RequestShape shape;
  KW_EXPECT_OK(Scan(ok, &shape));
  EXPECT_EQ(shape.elements, 1u + 64u * 3u);  // the name; each entry and its key and value

  v1::GenerateDataKeyRequest too_many = ok;
  (*too_many.mutable_encryption_context())["64"] = "v";
  absl::Status s = Scan(too_many);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument,
                          HasSubstr("encryption_context has more than 64 entries")));
  EXPECT_EQ(GetErrorCode(s), ErrorCode::kLimitExceeded);

  v1::GenerateDataKeyRequest long_name;
  long_name.set_key_name(std::string(257, 'k'));
  EXPECT_THAT(Scan(long_name), StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("key_name is over 256 bytes")));
  v1::GenerateDataKeyRequest long_value;
  (*long_value.mutable_encryption_context())["k"] = std::string(4097, 'v');
  EXPECT_THAT(Scan(long_value), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("a value of")));
  v1::GenerateDataKeyRequest long_key;
  (*long_key.mutable_encryption_context())[std::string(257, 'k')] = "v";
  EXPECT_THAT(Scan(long_key), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("a key of")));
}

TEST(RequestLimitsTest, NestedItemsAndTheTotalAreCounted) {
  v1::BatchDecryptDataKeysRequest batch;
  for (int i = 0; i < 10000; ++i) batch.add_requests()->set_wrapped("w");
  KW_EXPECT_OK(Scan(batch));
  batch.add_requests();
  EXPECT_THAT(Scan(batch), StatusIs(absl::StatusCode::kInvalidArgument,
                                    HasSubstr("requests has more than 10000 items")));
  // The total over all depths.
  v1::BatchDecryptDataKeysRequest wide;
  for (int i = 0; i < 3000; ++i) {
    auto* r = wide.add_requests();
    for (int j = 0; j < 40; ++j) (*r->mutable_encryption_context())[absl::StrCat(j)] = "";
  }
  EXPECT_THAT(Scan(wide), StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("more than 100000 fields and items")));
}

TEST(RequestLimitsTest, WireTricksAreRefused) {
  const auto& type = *v1::GetKeyRequest::descriptor();
  RequestShape shape;
  // A singular field sent twice.
  EXPECT_THAT(ScanRequest(std::string("\x0a\x01" "a" "\x0a\x01" "b", 6), type, {}, &shape),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("appears more than once")));
  // A length running past the end.
  EXPECT_THAT(ScanRequest(std::string("\x0a\x05" "ab", 4), type, {}, &shape),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a valid")));
  // Groups (never part of this API).
  EXPECT_THAT(ScanRequest(std::string("\x0b", 1), type, {}, &shape),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Unknown fields: a few small ones are a newer client's; many are not.
  std::string unknown;
  for (int i = 0; i < 16; ++i) unknown += std::string("\x12\x01x", 3);  // field 2, bytes
  KW_EXPECT_OK(ScanRequest(unknown, type, {}, &shape));
  unknown += std::string("\x12\x01x", 3);
  EXPECT_THAT(ScanRequest(unknown, type, {}, &shape),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown fields")));
  std::string big_unknown = "\x12\x81\x20" + std::string(4097, 'x');  // 4097 bytes
  EXPECT_THAT(ScanRequest(big_unknown, type, {}, &shape),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown field")));
  // An empty request is a valid one.
  KW_EXPECT_OK(ScanRequest("", type, {}, &shape));
}

}  // namespace
}  // namespace keyward::server
