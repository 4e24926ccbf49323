// One request on its way through keywardd.  KeyManagementService runs every
// call through the same pipeline:
//
//   admit (the principal's and the server's share: FairScheduler)
//   → check sizes and counts on the wire (request_limits.h)
//   → parse → handler: Authorize (policy) on the key it acts on, then act
//   → audit record durable → answer
//
// Handlers see a Call: they authorize through it before touching any key,
// and annotate the audit record.  A handler that returns OK without having
// authorized is refused (kInternal), so forgetting to ask is never an allow.
#ifndef KEYWARD_SERVER_CALL_H_
#define KEYWARD_SERVER_CALL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "base/bounded.h"
#include "keyward/keyring.h"
#include "policy/policy.h"

namespace keyward::server {

class KeyManagementService;

class Call {
 public:
  Call(KeyManagementService* service, const char* operation)
      : service_(service), operation_(operation) {}
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  const std::string& principal() const { return principal_; }
  const char* operation() const { return operation_; }

  // The operation this call is authorized and audited as, when it is not
  // the method's usual one (a decrypt for re-encryption is `reencrypt`).
  // REQUIRES: before Authorize.
  void set_operation(const char* operation) { operation_ = operation; }

  // Checks `key` (a key name, or "*" for operations on no particular key)
  // and asks the policy whether the caller may do this call's operation on
  // it with `context`; records the decision for the audit record.
  // Errors: kInvalidArgument for a key name that breaks the naming rules
  // (the message never quotes it); kPermissionDenied (access-denied) naming
  // the principal, operation and key.
  [[nodiscard]] absl::Status Authorize(absl::string_view key, const EncryptionContext& context,
                                       uint32_t version = 0);

  // Authorize for a set of keys rather than one: a ListKeys prefix (""
  // lists everything).  The policy is asked with `scope` as the key name, so
  // a rule for "payments/*" may list "payments/".  Errors: as Authorize; a
  // scope with bytes no key name may hold is kInvalidArgument.
  [[nodiscard]] absl::Status AuthorizeScope(absl::string_view scope);

  // Authorize on every key a glob can match (a grant's key): the caller's
  // own scope for `operation` (default: this call's) must contain the
  // glob, not merely match it as a name (policy::Policy::EvaluateScope).
  [[nodiscard]] absl::Status AuthorizePattern(absl::string_view pattern,
                                              const char* operation = nullptr);

  // For an action that cannot be undone: writes the call's audit record
  // ahead of acting and waits until it is durable — principal, operation,
  // key, hashed context and decision as Authorize recorded them, result
  // "PENDING" and `detail` (secret-free).  The call's own record follows as
  // for every call, with the outcome, under the same request id; if that one
  // cannot be written, this one still says what was done.  REQUIRES:
  // Authorize allowed the call.  Errors: kUnavailable (audit-unavailable):
  // then do not act.
  [[nodiscard]] absl::Status RecordIntent(std::string detail);

  // Authorize with a decision made by the handler itself (break-glass
  // requests and approvals are decided by the policy's `breakglass:`
  // section, not its rules): records it like Authorize.  Errors: as
  // Authorize.
  [[nodiscard]] absl::Status AuthorizeWith(absl::string_view key, const EncryptionContext& context,
                                           policy::Decision decision);

  // The policy's decision alone, for the items of a batch (each item is
  // decided on its own; SetBatchOutcome records the whole).
  policy::Decision Check(absl::string_view key, const EncryptionContext& context) const;

  // For batches: the keys involved, the decision the record shows and a
  // summary.  `decision` nullopt: every item was malformed, nothing was
  // decided (the record says "none", not "deny").
  void SetBatchOutcome(std::string keys, std::optional<policy::Decision> decision,
                       std::string detail);

  // Names the key for the record of a call refused before Authorize: the
  // key a message header names, when its entries are bound to another.
  // REQUIRES: `key` passed keystore::ValidateKeyName.
  void set_key(std::string key) { key_ = std::move(key); }
  void set_version(uint32_t v) { version_ = v; }
  void set_detail(std::string d) { detail_ = std::move(d); }
  // The call needs no permission (server info).
  void set_public() {
    decided_ = true;
    public_ = true;
  }
  bool decided() const { return decided_; }

  // Long loops call this every few items: when another principal is
  // waiting for the CPU with less use, it runs first (FairScheduler).
  void Yield();

 private:
  friend class KeyManagementService;
  friend class CallState;
  KeyManagementService* const service_;
  const char* operation_;
  std::string principal_;
  std::string request_id_;
  std::string peer_;
  std::string key_;
  uint32_t version_ = 0;
  EncryptionContext context_;
  bool decided_ = false;
  bool public_ = false;
  bool nothing_decided_ = false;  // a batch of malformed items only
  policy::Decision decision_;
  std::string detail_;
};

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_CALL_H_
