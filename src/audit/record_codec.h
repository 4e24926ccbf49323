// Internals of the binary record encoding, shared by the record codec and
// the segment files (which store records with repeated strings replaced by
// references, audit/segment.h).  docs/audit.md "Record encoding" is the
// normative description; this header is not a public contract.
#ifndef KEYWARD_AUDIT_RECORD_CODEC_H_
#define KEYWARD_AUDIT_RECORD_CODEC_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace keyward::audit::codec {

inline constexpr uint8_t kBinaryRecordV1 = 0x01;
inline constexpr size_t kPrevPrefixBytes = 8;

// A string field's header is varint(len << 3 | kind).
enum StringKind : uint8_t {
  kRaw = 0,       // len bytes, as is
  kHex = 1,       // lowercase hex of the len bytes that follow
  kHmacHex = 2,   // "hmac:" + lowercase hex of the len bytes that follow
  kRef = 3,       // segment files only: entry `len` of the segment's string table
  kIpv4Peer = 4,  // "ipv4:A.B.C.D:PORT" from 6 bytes (4 address, 2 port big-endian)
};

enum class Field : uint8_t {
  kRequestId, kPrincipal, kPeer, kOperation, kKey, kContextKey, kContextValue,
  kDecision, kRule, kResult, kErrorCode, kDetail,
};
// Fields whose raw values a segment replaces by references once seen.
bool Internable(Field f);

struct StringToken {
  StringKind kind = kRaw;
  absl::string_view payload;  // not for kRef
  uint64_t ref = 0;           // kRef only
};

void PutVarint(std::string* out, uint64_t v);
bool GetVarint(absl::string_view* in, uint64_t* v);
// The canonical form of `s`: the first of hmac-hex, hex, ipv4 peer, raw
// that represents it exactly.
void PutString(std::string* out, absl::string_view s);
bool GetStringToken(absl::string_view* in, StringToken* t);
void PutToken(std::string* out, const StringToken& t);
std::string TokenText(const StringToken& t);  // not for kRef

inline uint64_t ZigZag64(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t UnZigZag64(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}
inline uint64_t ZigZagTime(absl::Time t) { return ZigZag64(absl::ToUnixMicros(t)); }

// Walks a binary record (canonical or with references): every byte that
// is not a string field goes to `raw`, in order, and every string field to
// `string`.  Errors: kDataLoss for a malformed record, or what a callback
// returns.
struct WalkVisitor {
  std::function<void(absl::string_view)> raw;
  std::function<absl::Status(Field, const StringToken&)> string;
};
absl::Status Walk(absl::string_view record, const WalkVisitor& visit);

}  // namespace keyward::audit::codec

#endif  // KEYWARD_AUDIT_RECORD_CODEC_H_
