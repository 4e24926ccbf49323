#include "keyward/errors.h"

#include "absl/strings/cord.h"

namespace keyward {
namespace {
constexpr char kPayloadUrl[] = "type.keyward.dev/keyward.ErrorCode";

constexpr struct {
  ErrorCode code;
  absl::string_view name;
} kNames[] = {
    {ErrorCode::kNone, "none"},
    {ErrorCode::kNotAKeywardMessage, "not-a-keyward-message"},
    {ErrorCode::kUnsupportedVersion, "unsupported-version"},
    {ErrorCode::kUnsupportedSuite, "unsupported-suite"},
    {ErrorCode::kMalformedHeader, "malformed-header"},
    {ErrorCode::kLimitExceeded, "limit-exceeded"},
    {ErrorCode::kTruncated, "truncated"},
    {ErrorCode::kTrailingData, "trailing-data"},
    {ErrorCode::kMalformedFrame, "malformed-frame"},
    {ErrorCode::kCommitmentMismatch, "commitment-mismatch"},
    {ErrorCode::kAuthenticationFailed, "authentication-failed"},
    {ErrorCode::kContextMismatch, "context-mismatch"},
    {ErrorCode::kKeyMismatch, "key-mismatch"},
    {ErrorCode::kTenantErased, "tenant-erased"},
    {ErrorCode::kNoKeyringCouldUnwrap, "no-keyring-could-unwrap"},
    {ErrorCode::kEnvironmentMismatch, "environment-mismatch"},
    {ErrorCode::kAccessDenied, "access-denied"},
    {ErrorCode::kIoError, "io-error"},
    {ErrorCode::kAuditUnavailable, "audit-unavailable"},
    {ErrorCode::kMayHaveBeenApplied, "may-have-been-applied"},
};
}  // namespace

absl::string_view ErrorCodeName(ErrorCode code) {
  for (const auto& entry : kNames) {
    if (entry.code == code) return entry.name;
  }
  return "unknown";
}

ErrorCode ErrorCodeFromName(absl::string_view name) {
  for (const auto& entry : kNames) {
    if (entry.name == name) return entry.code;
  }
  return ErrorCode::kNone;
}

ErrorCode GetErrorCode(const absl::Status& status) {
  auto payload = status.GetPayload(kPayloadUrl);
  if (!payload.has_value()) return ErrorCode::kNone;
  return ErrorCodeFromName(std::string(*payload));
}

absl::Status MakeError(absl::StatusCode canonical, ErrorCode code,
                       absl::string_view message) {
  absl::Status status(canonical, message);
  status.SetPayload(kPayloadUrl, absl::Cord(ErrorCodeName(code)));
  return status;
}

}  // namespace keyward
