// Batch calls (BatchDecryptDataKeys, BatchRewrapMessageHeaders) share one
// shape, kept here: every item is read and decided on its own, on the key
// it names; the allowed items go to the core; every item is answered, in
// order, with its result or its own error; the batch is audited once.
#ifndef KEYWARD_SERVER_BATCH_ITEMS_H_
#define KEYWARD_SERVER_BATCH_ITEMS_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/bounded.h"
#include "keyward/errors.h"
#include "keyward/keyring.h"
#include "policy/policy.h"
#include "server/call.h"

namespace keyward::server {

// The items of a batch are decided one by one, each on the key it names;
// runs of equal items (same key and context) reuse one decision.  Finish
// records the batch on its Call: the keys, the decision the record shows
// (the first deny when no item was allowed, an allow otherwise, "none" when
// every item was malformed) and a one-line summary.
class BatchDecisions {
 public:
  explicit BatchDecisions(Call& call) : call_(call) {}
  // OK, or this item's access-denied error.
  absl::Status Decide(const std::string& key, const EncryptionContext& context);
  // An item that could not be read (it is not decided, and not a deny).
  void Malformed() { ++malformed_; }
  int decided() const { return allowed_ + denied_; }
  int malformed() const { return malformed_; }
  // `failed`: allowed items that failed afterwards.  `prefix`: "for
  // re-encryption; " and the like.
  void Finish(int items, int failed, absl::string_view prefix = "");

 private:
  Call& call_;
  std::vector<std::string> keys_;
  std::string previous_key_;
  EncryptionContext previous_context_;
  bool have_previous_ = false;
  policy::Decision previous_, last_allow_, first_deny_;
  int allowed_ = 0, denied_ = 0, malformed_ = 0;
};

// What one item of a batch is decided on.
struct BatchItem {
  std::string key;
  EncryptionContext context;
};

// Writes `status` into a per-item result (v1::BatchDecryptResult,
// v1::RewrapResult).  Per-item errors are short and name no caller input:
// a reply of 10,000 of them stays small.
template <typename Result>
void SetItemError(const absl::Status& status, Result* out) {
  out->set_code(static_cast<int>(status.code()));
  out->set_error(Bounded(status.message(), 300));
  const ErrorCode code = GetErrorCode(status);
  if (code != ErrorCode::kNone) out->set_error_code(std::string(ErrorCodeName(code)));
}

// One batch call's items, from reading to the audit record.
class BatchItems {
 public:
  // `noun`: what an item is ("item", "header"), for the error when none
  // can be read.  `prefix`: the start of the record's summary.
  BatchItems(Call& call, int count, std::string noun, std::string prefix = "")
      : call_(call), decisions_(call), count_(count), noun_(std::move(noun)),
        prefix_(std::move(prefix)) {}

  // Reads and decides every item, in order, giving the CPU to others every
  // 256 items: `read(i)` returns what item i is decided on, or why it
  // cannot be read (a malformed item, not a denial).  Errors:
  // kInvalidArgument (malformed-header) when no item could be read; the
  // batch is then recorded.
  template <typename Read>
  [[nodiscard]] absl::Status ReadAndDecide(Read read) {
    items_.reserve(static_cast<size_t>(count_));
    for (int i = 0; i < count_; ++i) {
      if (i % kYieldEvery == kYieldEvery - 1) call_.Yield();
      absl::StatusOr<BatchItem> item = read(i);
      if (!item.ok()) {
        decisions_.Malformed();
      } else if (absl::Status d = decisions_.Decide(item->key, item->context); !d.ok()) {
        item = std::move(d);
      }
      items_.push_back(std::move(item));
    }
    if (decisions_.decided() > 0) return absl::OkStatus();
    return NoneReadable();
  }

  // Whether item i was read and allowed; then what it was decided on (the
  // caller may move from it).
  bool allowed(int i) const { return items_[static_cast<size_t>(i)].ok(); }
  BatchItem& item(int i) { return *items_[static_cast<size_t>(i)]; }

  // Answers an allowed item with the core's result: `write(value, out)`, or
  // the core's error (counted as failed in the record).
  template <typename T, typename Result, typename Write>
  void Answer(absl::StatusOr<T>& result, Result* out, Write write) {
    if (result.ok()) {
      write(*result, out);
    } else {
      ++failed_;
      SetItemError(result.status(), out);
    }
  }
  // Answers item i with why it was left out, if it was; false otherwise.
  template <typename Result>
  bool AnswerRefused(int i, Result* out) const {
    if (allowed(i)) return false;
    SetItemError(items_[static_cast<size_t>(i)].status(), out);
    return true;
  }

  // Records the batch on its Call.  REQUIRES: ReadAndDecide returned OK
  // and every item was answered.
  // `note`: more for the summary, after the prefix.
  void Finish(absl::string_view note = "") {
    decisions_.Finish(count_, failed_, absl::StrCat(prefix_, note));
  }

 private:
  static constexpr int kYieldEvery = 256;
  absl::Status NoneReadable();

  Call& call_;
  BatchDecisions decisions_;
  const int count_;
  const std::string noun_;
  const std::string prefix_;
  // Per item: what it was decided on (allowed), or why it was left out.
  std::vector<absl::StatusOr<BatchItem>> items_;
  int failed_ = 0;
};

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_BATCH_ITEMS_H_
