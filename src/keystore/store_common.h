// Checks shared by every KeyStore implementation, so they agree on errors.
#ifndef KEYWARD_KEYSTORE_STORE_COMMON_H_
#define KEYWARD_KEYSTORE_STORE_COMMON_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "keystore/key_model.h"
#include "keystore/key_store.h"

namespace keyward::keystore::internal {

absl::Status CheckNewKey(const Key& key, absl::string_view store_environment);
absl::Status CheckPageSize(int page_size);
// The page token is the last name of the previous page.
inline std::string NextPageToken(const std::string& last_name) {
  return last_name;
}
absl::Status KeyNotFound(absl::string_view name);
absl::Status RevisionConflict(absl::string_view name);
// PutTenantKey's argument check, and its answer when a record exists.
// Messages never quote the tenant (an encryption context value).
absl::Status CheckNewTenantKey(const TenantKeyRecord& record);
absl::Status TenantKeyExists(absl::string_view key_name);
// Overwrites and empties a sealed tenant key held in memory.
void ForgetSealed(TenantKeyRecord& record);

}  // namespace keyward::keystore::internal

#endif  // KEYWARD_KEYSTORE_STORE_COMMON_H_
