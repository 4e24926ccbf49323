// Checks shared by every KeyStore implementation, so they agree on errors.
#ifndef KEYWARD_KEYSTORE_STORE_COMMON_H_
#define KEYWARD_KEYSTORE_STORE_COMMON_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "keystore/key_model.h"
#include "keystore/key_store.h"

namespace keyward::keystore::internal {

absl::Status CheckNewKey(const Key& key, absl::string_view store_environment);
absl::Status CheckPageSize(int page_size);
// kFailedPrecondition (kEnvironmentMismatch) unless the store at `where`,
// created for `stored`, is opened for that same environment `configured`.
absl::Status CheckStoreEnvironment(absl::string_view where, absl::string_view stored,
                                   absl::string_view configured);
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

// The smallest string greater than every string starting with `prefix`
// (names are ASCII), or empty when there is none: the end of a prefix scan.
std::string PrefixEnd(absl::string_view prefix);
// True when the stored columns of two versions agree (usage counters are
// not compared: they are written by AddUsage only).
bool SameStoredFields(const KeyVersion& a, const KeyVersion& b);

// The JSON text the stores keep in a column for labels, a grant's
// operations and context, and a data set report's rows per version.
// Readers skip what is not of the expected shape.
std::string LabelsToJson(const std::map<std::string, std::string>& labels);
std::map<std::string, std::string> LabelsFromJson(const std::string& text);
std::string GrantOperationsToJson(const policy::Grant& grant);
std::string GrantContextToJson(const policy::Grant& grant);
// Sets grant.operations and grant.context from their columns.
// A break-glass grant as the stores keep it: one JSON document.
std::string BreakGlassToJson(const policy::BreakGlassGrant& grant);
// Errors: kDataLoss for a document that is not one.
absl::StatusOr<policy::BreakGlassGrant> BreakGlassFromJson(absl::string_view text);
void GrantListsFromJson(const std::string& operations, const std::string& context,
                        policy::Grant& grant);
std::string RowsPerVersionToJson(const std::map<uint32_t, uint64_t>& rows);
std::map<uint32_t, uint64_t> RowsPerVersionFromJson(const std::string& text);

}  // namespace keyward::keystore::internal

#endif  // KEYWARD_KEYSTORE_STORE_COMMON_H_
