#include "format/kms_entries.h"

#include "absl/strings/str_cat.h"
#include "format/wire.h"
#include "keyward/errors.h"
#include "keyward/keyring.h"

namespace keyward::format {

absl::StatusOr<std::string> KmsBlobKeyName(absl::string_view b) {
  auto bad = [] { return absl::InvalidArgumentError("not a Keyward wrapped data key"); };
  // Versions 1 and 2 (a tenant's data key) share the layout up to the
  // sealed part.
  if (b.size() < 2 || (static_cast<uint8_t>(b[0]) != 1 && static_cast<uint8_t>(b[0]) != 2)) {
    return bad();
  }
  const size_t env_len = static_cast<uint8_t>(b[1]);
  size_t pos = 2 + env_len;
  if (b.size() < pos + 2) return bad();
  const size_t name_len = LoadBigEndian(b.substr(pos, 2));
  pos += 2;
  if (b.size() < pos + name_len) return bad();
  return std::string(b.substr(pos, name_len));
}

absl::Status CheckKmsEntriesBoundTo(const Header& header, absl::string_view key_name) {
  for (const EncryptedDataKey& edk : header.data_keys) {
    if (edk.provider_id != kKmsProviderId) continue;
    auto blob_key = KmsBlobKeyName(edk.ciphertext);
    if (edk.provider_info != key_name || !blob_key.ok() || *blob_key != key_name) {
      return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kMalformedHeader,
                       absl::StrCat("the message's kms data key entry is not wrapped by key '",
                                    key_name,
                                    "', the key its header names; refused without "
                                    "unwrapping anything"));
    }
  }
  return absl::OkStatus();
}

}  // namespace keyward::format
