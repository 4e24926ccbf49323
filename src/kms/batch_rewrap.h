// Header-only rewrap of many messages inside keywardd: each header's data
// key is unwrapped, wrapped again under its key's primary version, the
// header tag recomputed, and the new header verified by opening it through
// the new version (a real unwrap per distinct wrapped key).  The data key
// never leaves keywardd.
//
// Messages written with a cached data key share one wrapped key; within a
// batch each distinct wrapped key is unwrapped and rewrapped once.
#ifndef KEYWARD_KMS_BATCH_REWRAP_H_
#define KEYWARD_KMS_BATCH_REWRAP_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "keyward/keyring.h"
#include "kms/key_service.h"

namespace keyward::kms {

struct RewrappedHeader {
  std::string header;
  KeyReference key;
};

// One result per header, in order.  `skip[i]` true: left out (its result is
// a placeholder the caller replaces, e.g. access denied).  `keys[i]`: the key
// the header names, the one the caller authorized; a header whose kms entry
// belongs to another key is refused rather than wrapped under that key.
std::vector<absl::StatusOr<RewrappedHeader>> RewrapHeaders(
    KeyService* service, const std::vector<std::string>& headers,
    const std::vector<bool>& skip, const std::vector<std::string>& keys);

}  // namespace keyward::kms

#endif  // KEYWARD_KMS_BATCH_REWRAP_H_
