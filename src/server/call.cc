// Authorization of a call (server/call.h): the policy asked on what the
// handler acts on, and the decision kept for the call's audit record.
#include "server/call.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keystore/key_model.h"
#include "keyward/errors.h"
#include "keyward/message.h"
#include "server/key_management_service.h"

namespace keyward::server {

absl::Status Call::Authorize(absl::string_view key, const EncryptionContext& context,
                             uint32_t version) {
  if (key != "*") KW_RETURN_IF_ERROR(keystore::ValidateKeyName(key));
  key_ = std::string(key);
  version_ = version;
  context_ = context;
  decision_ = Check(key, context);
  decided_ = true;
  // A use of a break-glass grant says which one it was (the count), for the
  // post-incident review; the rule already links it to the grant.
  if (decision_.allowed && absl::StartsWith(decision_.rule, "breakglass:")) {
    detail_ = decision_.reason;
  }
  if (decision_.allowed) return absl::OkStatus();
  return MakeError(absl::StatusCode::kPermissionDenied, ErrorCode::kAccessDenied,
                   absl::StrCat("access denied: ", decision_.reason));
}

absl::Status Call::AuthorizeScope(absl::string_view scope) {
  if (scope.size() > FormatLimits::kMaxKeyNameSize) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kLimitExceeded,
                     "a key name prefix is at most 256 bytes");
  }
  for (char c : scope) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' &&
        c != '.' && c != '/') {
      return absl::InvalidArgumentError(
          "a key name prefix may only hold letters, digits, '-', '_', '.' and '/'");
    }
  }
  key_ = std::string(scope);
  context_.clear();
  decision_ = Check(scope, context_);
  decided_ = true;
  if (decision_.allowed) return absl::OkStatus();
  return MakeError(absl::StatusCode::kPermissionDenied, ErrorCode::kAccessDenied,
                   absl::StrCat("access denied: ", decision_.reason));
}

absl::Status Call::AuthorizePattern(absl::string_view pattern, const char* operation) {
  key_ = std::string(pattern);
  context_.clear();
  decision_ = service_->deps_.access->DecideScope(
      principal_, operation != nullptr ? operation : operation_, key_);
  decided_ = true;
  if (decision_.allowed) return absl::OkStatus();
  return MakeError(absl::StatusCode::kPermissionDenied, ErrorCode::kAccessDenied,
                   absl::StrCat("access denied: ", decision_.reason));
}

absl::Status Call::AuthorizeWith(absl::string_view key, const EncryptionContext& context,
                                 policy::Decision decision) {
  if (key != "*") KW_RETURN_IF_ERROR(keystore::ValidateKeyName(key));
  key_ = std::string(key);
  context_ = context;
  decision_ = std::move(decision);
  decided_ = true;
  if (decision_.allowed) return absl::OkStatus();
  return MakeError(absl::StatusCode::kPermissionDenied, ErrorCode::kAccessDenied,
                   absl::StrCat("access denied: ", decision_.reason));
}

policy::Decision Call::Check(absl::string_view key, const EncryptionContext& context) const {
  policy::Request r{principal_, operation_, std::string(key), &context, absl::Now()};
  // A decrypt allowed only by a break-glass grant is counted against it
  // here, durably, before anything is unwrapped.
  return service_->deps_.access->Decide(r, /*count_breakglass=*/true);
}

absl::Status Call::RecordIntent(std::string detail) {
  if (!decided_ || !decision_.allowed) {
    return absl::InternalError("an action was about to be recorded before it was authorized");
  }
  audit::AuditRecord r;
  r.time = absl::Now();
  r.request_id = request_id_;
  r.principal = principal_;
  r.peer = peer_;
  r.operation = operation_;
  r.key = key_;
  r.version = version_;
  r.context = service_->HashContext(context_);
  r.decision = "allow";
  r.rule = decision_.rule;
  r.result = "PENDING";
  r.detail = std::move(detail);
  return service_->deps_.audit->Append(std::move(r));
}

void Call::SetBatchOutcome(std::string keys, std::optional<policy::Decision> decision,
                           std::string detail) {
  key_ = std::move(keys);
  decided_ = true;
  nothing_decided_ = !decision.has_value();
  if (decision) decision_ = std::move(*decision);
  detail_ = std::move(detail);
}

void Call::Yield() { service_->scheduler_.Yield(); }

}  // namespace keyward::server
