// Limits before work: a request's size and counts are checked on the wire,
// against the limits its message type declares in keyward.proto (the field
// options max_bytes, max_items, max_key_bytes, max_value_bytes), before
// protobuf parses it and before anything is authorized, computed or
// audited from it.  The scan is one pass over the bytes, allocates nothing
// that grows with the input, and stops at the first broken limit, so a
// request of two million empty items costs what it takes to count to the
// limit, not what it would take to build it.
//
// Thread-safety: stateless; safe to call concurrently.
#ifndef KEYWARD_SERVER_REQUEST_LIMITS_H_
#define KEYWARD_SERVER_REQUEST_LIMITS_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/zero_copy_stream.h"

namespace keyward::server {

struct WireLimits {
  // Field occurrences and items, counted at every depth.  Bounds what the
  // parsed request can occupy in memory (about 128 bytes each at most).
  size_t max_elements = 100000;
  // Nested messages (a batch item's context is depth 3).
  int max_depth = 8;
  // Fields this build does not know (a newer client's): per message, and
  // the size of each.
  int max_unknown_fields = 16;
  size_t max_unknown_field_bytes = 4096;
};

// What the scan saw (also when it refused): for the audit record's summary.
struct RequestShape {
  size_t bytes = 0;
  size_t elements = 0;
};

// Checks `in` (a serialized `type`) against `type`'s declared limits.
// Errors: kInvalidArgument with ErrorCode::kLimitExceeded naming the field
// and its limit; kInvalidArgument (no Keyward code) when the bytes are not
// protobuf wire format.  Messages name fields and limits and
// never quote the input.
absl::Status ScanRequest(google::protobuf::io::ZeroCopyInputStream& in,
                         const google::protobuf::Descriptor& type, const WireLimits& limits,
                         RequestShape* shape);
absl::Status ScanRequest(absl::string_view bytes, const google::protobuf::Descriptor& type,
                         const WireLimits& limits, RequestShape* shape);

// The declared limits of one field: 0 where the field declares none.
struct FieldLimits {
  uint32_t max_bytes = 0;
  uint32_t max_items = 0;
  uint32_t max_key_bytes = 0;
  uint32_t max_value_bytes = 0;
};
FieldLimits LimitsOf(const google::protobuf::FieldDescriptor& field);

// Every field of `type` (and of the messages it contains) that can grow —
// strings, bytes, repeated fields, maps — without a declared limit, as
// "message.field" names.  keyward.proto's test requires this to be empty.
std::vector<std::string> FieldsWithoutLimits(const google::protobuf::Descriptor& type);

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_REQUEST_LIMITS_H_
