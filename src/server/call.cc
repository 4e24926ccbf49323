// Authorization of a call (server/call.h): the policy asked on the key, the
// scope or the pattern a handler acts on, or on each item of a batch, and
// the decision kept for the call's audit record.
#include "server/call.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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

policy::Decision Call::Check(absl::string_view key, const EncryptionContext& context) const {
  policy::Request r{principal_, operation_, std::string(key), &context, absl::Now()};
  return service_->deps_.access->Decide(r);
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

absl::Status BatchDecisions::Decide(const std::string& key, const EncryptionContext& context) {
  if (!have_previous_ || key != previous_key_ || !(context == previous_context_)) {
    if (std::find(keys_.begin(), keys_.end(), key) == keys_.end() && keys_.size() < 16) {
      keys_.push_back(key);
    }
    previous_ = call_.Check(key, context);
    previous_key_ = key;
    previous_context_ = context;
    have_previous_ = true;
  }
  if (previous_.allowed) {
    if (allowed_++ == 0) last_allow_ = previous_;
    return absl::OkStatus();
  }
  if (denied_++ == 0) first_deny_ = previous_;
  return MakeError(absl::StatusCode::kPermissionDenied, ErrorCode::kAccessDenied,
                   absl::StrCat("access denied: ", previous_.reason));
}

void BatchDecisions::Finish(int items, int failed, absl::string_view prefix) {
  std::optional<policy::Decision> shown;
  if (allowed_ > 0) {
    shown = last_allow_;
  } else if (denied_ > 0) {
    shown = first_deny_;
  }
  call_.SetBatchOutcome(
      absl::StrJoin(keys_, ","), shown,
      absl::StrCat(prefix, "batch of ", items, ": ", malformed_, " malformed, ", denied_,
                   " denied, ", failed, " failed",
                   denied_ > 0 ? absl::StrCat(" (", first_deny_.reason, ")") : ""));
}

}  // namespace keyward::server
