// Deciding the items of a batch and recording the batch (server/batch_items.h).
#include "server/batch_items.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace keyward::server {

absl::Status BatchDecisions::Decide(const std::string& key, const EncryptionContext& context) {
  // A break-glass decision counts one use: never reused for the next item.
  if (!have_previous_ || key != previous_key_ || !(context == previous_context_) ||
      absl::StartsWith(previous_.rule, "breakglass:")) {
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

absl::Status BatchItems::NoneReadable() {
  decisions_.Finish(count_, 0, prefix_);
  return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kMalformedHeader,
                   absl::StrCat("every ", noun_, " of the batch is malformed (the first: ",
                                Bounded(items_[0].status().message(), 200), ")"));
}

}  // namespace keyward::server
