// gMock matchers for absl::Status and absl::StatusOr<T>:
//   EXPECT_THAT(s, IsOk());
//   EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument));
//   EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss, HasSubstr("frame")));
//   EXPECT_THAT(result, IsOkAndHolds(Eq(42)));
#ifndef KEYWARD_TESTING_STATUS_MATCHERS_H_
#define KEYWARD_TESTING_STATUS_MATCHERS_H_

#include <ostream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace keyward::testing {

inline const absl::Status& GetStatus(const absl::Status& status) {
  return status;
}
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& status = GetStatus(arg);
  if (!status.ok()) *result_listener << "status is " << status;
  return status.ok();
}

MATCHER_P(StatusIs, code,
          "has status code " + absl::StatusCodeToString(code)) {
  const absl::Status& status = GetStatus(arg);
  *result_listener << "status is " << status;
  return status.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has status code " + absl::StatusCodeToString(code) +
               " and a matching message") {
  const absl::Status& status = GetStatus(arg);
  *result_listener << "status is " << status;
  return status.code() == code &&
         ::testing::ExplainMatchResult(message_matcher,
                                       std::string(status.message()),
                                       result_listener);
}

MATCHER_P(IsOkAndHolds, value_matcher, "is OK and holds a matching value") {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(value_matcher, *arg, result_listener);
}

}  // namespace keyward::testing

// Asserts that `rexpr` is OK and moves its value into `lhs`.
#define KW_ASSERT_OK_AND_ASSIGN(lhs, rexpr)                                \
  KW_ASSERT_OK_AND_ASSIGN_IMPL_(KW_TEST_CONCAT_(_kw_sor_, __LINE__), lhs, \
                                rexpr)
#define KW_ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                   \
  ASSERT_TRUE(statusor.ok()) << statusor.status();           \
  lhs = std::move(statusor).value()
#define KW_TEST_CONCAT_INNER_(a, b) a##b
#define KW_TEST_CONCAT_(a, b) KW_TEST_CONCAT_INNER_(a, b)

#define KW_ASSERT_OK(expr) ASSERT_THAT((expr), ::keyward::testing::IsOk())
#define KW_EXPECT_OK(expr) EXPECT_THAT((expr), ::keyward::testing::IsOk())

#endif  // KEYWARD_TESTING_STATUS_MATCHERS_H_
