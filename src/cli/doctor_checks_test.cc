// `keyward doctor`'s judgements on facts given to them: the clock skew and
// checkpoint age thresholds (ops_e2e_test provokes the rest against a real
// keywardd; a skewed clock cannot be provoked there without faking time).
#include "cli/doctor_checks.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace keyward::cli::doctor {
namespace {

using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

TEST(DoctorChecksTest, ClockSkewBeyondTheRoundTripIsAWarningThenAFailure) {
  const absl::Time sent = kNow, received = kNow + absl::Milliseconds(20);
  EXPECT_EQ(ClockSkew(kNow + absl::Milliseconds(10), sent, received).level, Level::kOk);
  // 1.5 s ahead, but the round trip allows 10 ms: fine.
  EXPECT_EQ(ClockSkew(kNow + absl::Milliseconds(1500), sent, received).level, Level::kOk);
  Finding ahead = ClockSkew(kNow + absl::Seconds(5), sent, received);
  EXPECT_EQ(ahead.level, Level::kWarning);
  EXPECT_THAT(ahead.finding, HasSubstr("ahead of"));
  Finding behind = ClockSkew(kNow - absl::Seconds(90), sent, received);
  EXPECT_EQ(behind.level, Level::kFailure);
  EXPECT_THAT(behind.finding, HasSubstr("behind"));
  EXPECT_THAT(behind.fix, HasSubstr("chrony"));
  // A slow round trip cannot be taken for skew.
  EXPECT_EQ(ClockSkew(kNow + absl::Seconds(5), sent, kNow + absl::Seconds(10)).level, Level::kOk);
}

TEST(DoctorChecksTest, CheckpointAge) {
  EXPECT_EQ(CheckpointAge(absl::Minutes(2)).level, Level::kOk);
  EXPECT_EQ(CheckpointAge(absl::Hours(2)).level, Level::kWarning);
  EXPECT_EQ(CheckpointAge(absl::Hours(30)).level, Level::kFailure);
}

TEST(DoctorChecksTest, CertificateExpiryAndExitCodes) {
  CertificateInfo c;
  c.source = "client";
  c.subject = "CN=x";
  c.not_before = kNow - absl::Hours(24);
  c.not_after = kNow + absl::Hours(24 * 40);
  const absl::Duration warn = absl::Hours(24 * 30);
  EXPECT_EQ(CertificateExpiry(c, kNow, warn).level, Level::kOk);
  c.not_after = kNow + absl::Hours(24 * 29);
  EXPECT_EQ(CertificateExpiry(c, kNow, warn).level, Level::kWarning);
  c.not_after = kNow;
  EXPECT_EQ(CertificateExpiry(c, kNow, warn).level, Level::kFailure);
  c.not_before = kNow + absl::Hours(1);
  c.not_after = kNow + absl::Hours(24 * 400);
  EXPECT_THAT(CertificateExpiry(c, kNow, warn).finding, HasSubstr("not valid before"));

  EXPECT_EQ(ExitCode({}), 0);
  EXPECT_EQ(ExitCode({{"a", Level::kOk, "", ""}, {"b", Level::kSkipped, "", ""}}), 0);
  EXPECT_EQ(ExitCode({{"a", Level::kWarning, "", ""}, {"b", Level::kOk, "", ""}}), 1);
  EXPECT_EQ(ExitCode({{"a", Level::kWarning, "", ""}, {"b", Level::kFailure, "", ""}}), 2);
}

}  // namespace
}  // namespace keyward::cli::doctor
