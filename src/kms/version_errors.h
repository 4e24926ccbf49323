// Errors that name a key version, in the words every part of KeyService
// uses for them (what is wrong and what to do).
#ifndef KEYWARD_KMS_VERSION_ERRORS_H_
#define KEYWARD_KMS_VERSION_ERRORS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "keystore/key_model.h"

namespace keyward::kms {

// "2024-05-01 12:00:00 UTC".
std::string HumanTime(absl::Time t);

// OK for a version that may decrypt; otherwise kFailedPrecondition saying
// why it may not (disabled, pending or destroyed) and how to undo it.
absl::Status VersionNotUsable(const keystore::Key& key, const keystore::KeyVersion& v);

// kNotFound naming the key and the version it lacks.
absl::Status NoSuchVersion(absl::string_view name, uint32_t version);

}  // namespace keyward::kms

#endif  // KEYWARD_KMS_VERSION_ERRORS_H_
