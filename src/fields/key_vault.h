// The field data keys of one application database: the table
// `keyward_field_keys`, holding each (data set, class, tenant)'s data keys
// wrapped by keywardd, newest generation first.  Values name their key by
// `ref`, a random 32-bit number that is also part of the key's encryption
// context, so keywardd's authentication ties each ref to exactly one data
// key (docs/decisions/0022).
//
// Thread-safety: safe to share; calls are serialized on one connection.
#ifndef KEYWARD_FIELDS_KEY_VAULT_H_
#define KEYWARD_FIELDS_KEY_VAULT_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "appdb/database.h"
#include "keyward/keyring.h"

namespace keyward::fields {

inline constexpr char kKeyTable[] = "keyward_field_keys";

// Reserved encryption-context keys of field data keys (policy conditions
// name the first three).
inline constexpr char kContextDataset[] = "keyward:dataset";
inline constexpr char kContextClass[] = "keyward:class";
inline constexpr const char* kContextTenant = kTenantContextKey;  // keyward/keyring.h
inline constexpr char kContextKeyRef[] = "keyward:field-key";

struct KeySlot {
  std::string dataset;
  std::string class_name;
  std::string tenant;  // "" without tenants
  bool operator==(const KeySlot&) const = default;
};

struct VaultKey {
  uint32_t ref = 0;
  KeySlot slot;
  int64_t generation = 1;
  std::string wrapped;
  uint32_t kek_version = 0;
  std::string created_at;
};

// The encryption context a field data key is bound to.
EncryptionContext FieldKeyContext(const KeySlot& slot, uint32_t ref);

class KeyVault {
 public:
  // Takes the connection; creates the table when missing.
  static absl::StatusOr<std::unique_ptr<KeyVault>> Open(std::unique_ptr<appdb::Database> db);

  // The newest generation for `slot`, if any.
  absl::StatusOr<std::optional<VaultKey>> Current(const KeySlot& slot);
  absl::StatusOr<std::optional<VaultKey>> Get(uint32_t ref);
  // Stores `key` unless its ref or its (slot, generation) is taken.
  // Returns kAlreadyExists naming which: "ref" (draw another) or
  // "generation" (someone else made it first: read Current).
  absl::Status Insert(const VaultKey& key);
  // Every generation of `slot`, newest first.
  absl::StatusOr<std::vector<VaultKey>> Generations(const KeySlot& slot);
  // Every key of the data set (of one tenant when `tenant` is set).
  absl::StatusOr<std::vector<VaultKey>> List(const std::string& dataset,
                                             const std::optional<std::string>& tenant);
  // Replaces a key's wrapped form (after a rewrap to a new KEK version).
  absl::Status Rewrap(uint32_t ref, const std::string& wrapped, uint32_t kek_version);
  // Deletes every key of `tenant` in the data set; returns how many.
  absl::StatusOr<uint64_t> DeleteTenant(const std::string& dataset, const std::string& tenant);

 private:
  explicit KeyVault(std::unique_ptr<appdb::Database> db) : db_(std::move(db)) {}
  absl::StatusOr<std::vector<VaultKey>> Select(const std::string& where,
                                               const std::vector<appdb::Value>& params);
  std::mutex mu_;
  std::unique_ptr<appdb::Database> db_;
};

}  // namespace keyward::fields

#endif  // KEYWARD_FIELDS_KEY_VAULT_H_
