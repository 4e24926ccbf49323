// MemoryKeyStore: a KeyStore in a std::map, for unit tests of the layers
// above.  Same contract as every KeyStore, nothing is durable.
#ifndef KEYWARD_KEYSTORE_MEMORY_KEY_STORE_H_
#define KEYWARD_KEYSTORE_MEMORY_KEY_STORE_H_

#include <map>
#include <mutex>
#include <string>

#include "keystore/key_store.h"

namespace keyward::keystore {

class MemoryKeyStore final : public KeyStore {
 public:
  explicit MemoryKeyStore(std::string environment);

  absl::StatusOr<StoreInfo> GetInfo() override;
  absl::Status CreateKey(const Key& key) override;
  absl::StatusOr<Key> GetKey(absl::string_view name) override;
  absl::StatusOr<KeyPage> ListKeys(absl::string_view prefix, int page_size,
                                   absl::string_view page_token) override;
  absl::Status UpdateKey(const Key& key) override;
  absl::Status AddUsage(const std::vector<UsageDelta>& deltas) override;
  absl::StatusOr<uint64_t> AddDataKeysIssued(absl::string_view key_name, uint32_t version,
                                             int64_t delta, uint64_t limit) override;
  absl::Status Scrub() override;
  absl::StatusOr<std::vector<VersionRef>> ListDueDestructions(
      absl::Time now) override;
  absl::StatusOr<int64_t> CountKeys() override;
  absl::Status PutDataSetReport(const DataSetReport& report) override;
  absl::StatusOr<std::vector<DataSetReport>> ListDataSetReports(
      absl::string_view key_name) override;
  absl::Status CreateGrant(const policy::Grant& grant) override;
  absl::StatusOr<std::vector<policy::Grant>> ListGrants(absl::Time now,
                                                        bool include_inactive) override;
  absl::Status RevokeGrant(absl::string_view id, absl::Time when) override;
  absl::Status CreateBreakGlass(const policy::BreakGlassGrant& grant) override;
  absl::StatusOr<std::vector<policy::BreakGlassGrant>> ListBreakGlass(
      bool include_closed) override;
  absl::StatusOr<policy::BreakGlassGrant> UpdateBreakGlass(
      absl::string_view id,
      const std::function<absl::Status(policy::BreakGlassGrant&)>& update) override;
  absl::StatusOr<std::optional<TenantKeyRecord>> GetTenantKey(
      absl::string_view key_name, absl::string_view tenant) override;
  absl::Status PutTenantKey(const TenantKeyRecord& record) override;
  absl::StatusOr<std::optional<TenantKeyRecord>> EraseTenantKey(
      absl::string_view key_name, absl::string_view tenant, absl::Time when,
      absl::string_view by) override;
  absl::StatusOr<std::optional<std::string>> GetSealedSecret(
      absl::string_view name) override;
  absl::Status PutSealedSecret(absl::string_view name,
                               absl::string_view sealed) override;
  absl::Status SetSealedSecret(absl::string_view name, absl::string_view sealed) override;

 private:
  const std::string environment_;
  const absl::Time created_;
  std::mutex mu_;
  std::map<std::string, Key, std::less<>> keys_;  // GUARDED_BY(mu_)
  std::map<std::string, policy::Grant, std::less<>> grants_;  // GUARDED_BY(mu_)
  std::map<std::string, policy::BreakGlassGrant, std::less<>> breakglass_;  // GUARDED_BY(mu_)
  std::map<std::string, std::string, std::less<>> secrets_;   // GUARDED_BY(mu_)
  std::map<std::pair<std::string, std::string>, DataSetReport> reports_;  // GUARDED_BY(mu_)
  std::map<std::pair<std::string, std::string>, TenantKeyRecord> tenant_keys_;  // GUARDED_BY(mu_)
};

}  // namespace keyward::keystore

#endif  // KEYWARD_KEYSTORE_MEMORY_KEY_STORE_H_
