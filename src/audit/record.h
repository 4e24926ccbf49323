// One audit record: who asked for what, about which key, what was decided and
// what happened.  Never a plaintext, data key or key: encryption context
// values are HMAC'd before they get here (context keys stay readable).
//
// Two encodings, each a record's Merkle leaf (docs/audit.md "Record
// encoding"):
//  - binary (format byte 0x01): what a log directory's segments hold since
//    wave 2, about 100 bytes for a data-key call
//    (docs/decisions/0034-compact-audit-records.md);
//  - one line of JSON whose first two fields are "seq" (0, 1, 2, ...) and
//    "prev" (hex leaf hash of the previous record): what logs in PostgreSQL
//    and directories written before segments hold, and what every reader
//    (`keyward audit export`, ReadAuditRecords) is given, rendered from the
//    binary form when that is how the record is stored.
#ifndef KEYWARD_AUDIT_RECORD_H_
#define KEYWARD_AUDIT_RECORD_H_

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

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
  bool prefix_only = false;  // binary record: only prev's first 8 bytes are set
  // Whether the record names `previous` (the leaf hash before it).
  bool Follows(const Hash& previous) const {
    return prefix_only ? std::equal(prev.begin(), prev.begin() + 8, previous.begin())
                       : prev == previous;
  }
};
absl::StatusOr<ChainFields> ReadChainFields(absl::string_view line);

// The binary encoding.  EncodeRecordBody runs on the caller's thread;
// ChainBinaryRecord adds the record's place: format byte, seq, and the
// first 8 bytes of the previous leaf hash (enough to name the first bad
// record; the Merkle tree, not the chain, is what is signed).
std::string EncodeRecordBody(const AuditRecord& record);
std::string ChainBinaryRecord(absl::string_view body, uint64_t seq, const Hash& prev);

struct DecodedRecord {
  uint64_t seq = 0;
  std::array<uint8_t, 8> prev_prefix{};
  AuditRecord record;
};
// Errors: kDataLoss for bytes that are not a binary record.
absl::StatusOr<DecodedRecord> DecodeBinaryRecord(absl::string_view bytes);

inline bool IsJsonRecord(absl::string_view stored) {
  return !stored.empty() && stored.front() == '{';
}
// The JSON line readers get for a stored record: a JSON record as is, a
// binary one rendered with "prev" = `prev`, the previous record's full leaf
// hash.  Errors: kDataLoss.
absl::StatusOr<std::string> RecordAsJson(absl::string_view stored, const Hash& prev);

// A JSON line read back (tools and tests that rebuild records from an
// export).  Errors: kInvalidArgument.
struct ParsedJsonRecord {
  uint64_t seq = 0;
  Hash prev{};
  AuditRecord record;
};
absl::StatusOr<ParsedJsonRecord> ParseJsonRecord(absl::string_view line);

// The leaf hash a record rendered as `line` may have: the line's own (a
// record stored as JSON) or its binary encoding's (a record stored in a
// segment).  A reader that chains records accepts either as the next
// record's "prev".  The second is absent when the line does not parse.
std::vector<Hash> PossibleLeaves(absl::string_view line);

}  // namespace keyward::audit

#endif  // KEYWARD_AUDIT_RECORD_H_
