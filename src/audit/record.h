// One audit record: who asked for what, about which key, what was decided and
// what happened.  Never a plaintext, data key or key: encryption context
// values are HMAC'd before they get here (context keys stay readable).
//
// On disk a record is one line of JSON whose first two fields are "seq"
// (0, 1, 2, ...) and "prev" (hex leaf hash of the previous record), so a
// verifier can walk the chain without parsing the rest; the line's bytes are
// the Merkle leaf (docs/audit.md).
#ifndef KEYWARD_AUDIT_RECORD_H_
#define KEYWARD_AUDIT_RECORD_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audit/merkle.h"

namespace keyward::audit {

struct AuditRecord {
  absl::Time time;
  std::string request_id;
  std::string principal;
  std::string peer;
  std::string operation;
  std::string key;
  uint32_t version = 0;
  std::map<std::string, std::string> context;  // values are HMACs
  std::string decision;    // allow | deny | none
  std::string rule;        // rule or grant that decided
  std::string result;      // canonical status name: OK, PERMISSION_DENIED, ...
  std::string error_code;  // Keyward error code name, if any
  int64_t latency_us = 0;
  std::string detail;      // short, secret-free note
};

// The JSON line (without the newline).
std::string SerializeRecord(const AuditRecord& record, uint64_t seq, const Hash& prev);
// The same in two steps, so that the expensive part can run on the
// caller's thread before the record's place in the chain is known:
// SerializeRecord(r, seq, prev) == ChainRecord(SerializeRecordBody(r), seq, prev).
std::string SerializeRecordBody(const AuditRecord& record);
std::string ChainRecord(absl::string_view body, uint64_t seq, const Hash& prev);

// The two chain fields of a serialized record, read without a full parse.
// Errors: kDataLoss when the line does not start as a record must.
struct ChainFields {
  uint64_t seq = 0;
  Hash prev{};
};
absl::StatusOr<ChainFields> ReadChainFields(absl::string_view line);

}  // namespace keyward::audit

#endif  // KEYWARD_AUDIT_RECORD_H_
