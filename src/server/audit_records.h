// What keywardd's audit records say about calls, beyond the call itself:
// request ids and encryption context values as records show them.
#ifndef KEYWARD_SERVER_AUDIT_RECORDS_H_
#define KEYWARD_SERVER_AUDIT_RECORDS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "crypto/hmac.h"

namespace keyward::server {

// A fresh request id: 24 hex digits ("unknown" if randomness failed).
std::string NewRequestId();

// Request ids from clients are kept when they look like ids; anything else
// is replaced, so a record never carries caller-chosen free text there.
bool PlausibleRequestId(absl::string_view id);

// "hmac:<32 hex>": how an encryption context value appears in audit records.
std::string HashContextValue(const crypto::HmacSha256& hmac, absl::string_view key,
                             absl::string_view value);

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_AUDIT_RECORDS_H_
