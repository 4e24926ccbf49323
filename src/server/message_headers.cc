// Reading message headers before authorization (server/message_headers.h).
#include "server/message_headers.h"

#include <string>

#include "base/status_macros.h"
#include "keystore/key_model.h"
#include "kms/kms_keyring.h"

namespace keyward::server {

absl::StatusOr<format::Header> PeekHeader(absl::string_view bytes) {
  std::string authenticated;
  return format::ParseHeader(bytes, &authenticated);
}

absl::StatusOr<format::Header> ReadableHeader(absl::string_view bytes, Call* call) {
  KW_ASSIGN_OR_RETURN(format::Header h, PeekHeader(bytes));
  KW_RETURN_IF_ERROR(keystore::ValidateKeyName(h.key.key_name));
  if (call != nullptr) call->set_key(h.key.key_name);
  KW_RETURN_IF_ERROR(kms::CheckKmsEntriesBoundToHeaderKey(h));
  return h;
}

}  // namespace keyward::server
