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

#include <functional>
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

struct RewrapOptions {
  // Pairs each message's context must hold (RewrapMessageHeader's caller).
  EncryptionContext expected_context;
  // Called between headers (keywardd gives the CPU to other callers there).
  std::function<void()> between_headers;
};

// One result per header, in order.  `skip[i]` true: left out (its result is
// a placeholder the caller replaces, e.g. access denied).  `keys[i]`: the key
// the header names, the one the caller authorized: only kms entries wrapped
// by that key are unwrapped (CheckKmsEntriesBoundToHeaderKey should have
// refused any other before authorization), and the new entry is wrapped
// under its primary version.
std::vector<absl::StatusOr<RewrappedHeader>> RewrapHeaders(
    KeyService* service, const std::vector<std::string>& headers,
    const std::vector<bool>& skip, const std::vector<std::string>& keys,
    const RewrapOptions& options = {});

}  // namespace keyward::kms

#endif  // KEYWARD_KMS_BATCH_REWRAP_H_
