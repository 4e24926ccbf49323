// Reading which key a "kms" data key entry is wrapped by, for readers on
// either side of the wire: keywardd before it authorizes anything, and the
// SDK's key-bound Encryptor before it asks keywardd to unwrap.
#ifndef KEYWARD_FORMAT_KMS_ENTRIES_H_
#define KEYWARD_FORMAT_KMS_ENTRIES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "format/header.h"

namespace keyward::format {

// The key name inside a wrapped data key blob (src/kms/data_key_blob.h: u8
// version 1 or 2, str8 environment, str16 key name, ...).  It is bound into the
// blob's seal, so keywardd unwraps with exactly this key.  Errors:
// kInvalidArgument for a blob too short or of another version.
absl::StatusOr<std::string> KmsBlobKeyName(absl::string_view wrapped);

// Every kms entry of `header` must be wrapped by `key_name`: the entry's
// provider info and the blob's own key name both name it.  Errors:
// kInvalidArgument (malformed-header) naming only `key_name`.
absl::Status CheckKmsEntriesBoundTo(const Header& header, absl::string_view key_name);

}  // namespace keyward::format

#endif  // KEYWARD_FORMAT_KMS_ENTRIES_H_
