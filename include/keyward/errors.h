// Typed errors.  Every error Keyward returns is an absl::Status with a
// canonical code and, where a caller may want to react to the exact cause, a
// Keyward ErrorCode attached as a payload.  Messages say what was wrong and
// what to do; they never contain key material or plaintext.
#ifndef KEYWARD_ERRORS_H_
#define KEYWARD_ERRORS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace keyward {

enum class ErrorCode {
  kNone = 0,               // OK, or a status without a Keyward code
  // The input is not usable as a message (absl::StatusCode::kInvalidArgument).
  kNotAKeywardMessage,     // no "KWRD" magic at the start
  kUnsupportedVersion,     // a format version this build does not read
  kUnsupportedSuite,       // an algorithm suite this build does not know
  kMalformedHeader,        // a header field is invalid; the message names it
  kLimitExceeded,          // a size or count above the documented limits
  // The message is corrupt or was tampered with (kDataLoss).
  kTruncated,              // the input ended before the message did
  kTrailingData,           // bytes follow the final frame
  kMalformedFrame,         // a frame's type byte or length is invalid
  kCommitmentMismatch,     // the data key does not match the key commitment
  kAuthenticationFailed,   // header or frame N failed authentication
  // The caller cannot open this message (kFailedPrecondition).
  kContextMismatch,        // the expected encryption context does not match
  kNoKeyringCouldUnwrap,   // none of the given keyrings could unwrap a DEK
  kEnvironmentMismatch,    // material from another environment
  kKeyMismatch,            // a message under another key than the reader's
  kTenantErased,           // the tenant (keyward:tenant) was erased: its data
                           // keys can never be decrypted again, nor new ones made
  // keywardd's access policy refused the request (kPermissionDenied).
  kAccessDenied,           // no rule or grant allows it, or a deny rule matched
  // Local I/O (absl::StatusCode::kUnavailable).
  kIoError,                // reading or writing a file or stream failed
  // keywardd could not make the request's audit record durable, so it did
  // not answer (kUnavailable); retry once the operator has fixed the log.
  kAuditUnavailable,
  // A call that changes state failed after it was sent to keywardd (kUnknown):
  // it may have been applied.  The SDK does not send it again; check (the
  // message names the command) before retrying.
  kMayHaveBeenApplied,
};

// "not-a-keyward-message", "authentication-failed", ... (stable; used in
// --json output and by scripts).
absl::string_view ErrorCodeName(ErrorCode code);

// The Keyward code attached to `status`, or kNone.
ErrorCode GetErrorCode(const absl::Status& status);

// The code named `name` (as ErrorCodeName prints it), or kNone.
ErrorCode ErrorCodeFromName(absl::string_view name);

// A status with `code` attached.  `canonical` is the absl code callers and
// the gRPC layer see.
absl::Status MakeError(absl::StatusCode canonical, ErrorCode code,
                       absl::string_view message);

}  // namespace keyward

#endif  // KEYWARD_ERRORS_H_
