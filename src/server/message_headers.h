// A message header as handlers read it before its key is asked about:
// parsed only (nothing is unwrapped or authenticated yet), then checked to
// name a valid key that every kms entry is bound to.
#ifndef KEYWARD_SERVER_MESSAGE_HEADERS_H_
#define KEYWARD_SERVER_MESSAGE_HEADERS_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "format/header.h"
#include "server/call.h"

namespace keyward::server {

// The header at the start of `bytes`, parsed but not authenticated.
// Errors: kInvalidArgument (malformed-header).
absl::StatusOr<format::Header> PeekHeader(absl::string_view bytes);

// What a header must pass before its key is asked about: it parses, names
// a valid key, and every kms entry is wrapped by that key
// (kms::CheckKmsEntriesBoundToHeaderKey).  `call`: a single-message call,
// whose record names the header's key even when the entries refuse it.
absl::StatusOr<format::Header> ReadableHeader(absl::string_view bytes, Call* call = nullptr);

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_MESSAGE_HEADERS_H_
