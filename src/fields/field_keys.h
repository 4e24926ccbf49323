// Field data keys as AEADs, by slot (data set, class, tenant) for
// encryption and by ref for decryption: the key vault below, keywardd
// behind it, and a bounded single-flight cache in front.
//
// Thread-safe.
#ifndef KEYWARD_FIELDS_FIELD_KEYS_H_
#define KEYWARD_FIELDS_FIELD_KEYS_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "crypto/aead.h"
#include "fields/key_vault.h"
#include "format/single_flight_cache.h"
#include "keyward/caching_unwrapper.h"
#include "keyward/data_client.h"

namespace keyward::fields {

class FieldKeys {
 public:
  struct Key {
    uint32_t ref = 0;
    uint32_t kek_version = 0;
    int64_t generation = 0;
    std::shared_ptr<const crypto::Aead> aead;
  };

  FieldKeys(std::string key_name, std::shared_ptr<DataClient> client,
            std::unique_ptr<KeyVault> vault, CacheLimits limits);

  // The slot's newest key; generation 1 is made (by keywardd, stored in the
  // vault) when the slot has none.  Two processes racing agree on one.
  absl::StatusOr<Key> ForEncryption(const KeySlot& slot);
  // The key `ref` names, which must belong to `slot`: a value whose ref
  // points at another class's or tenant's key fails here, and keywardd
  // checks the same through the key's encryption context.
  absl::StatusOr<Key> ForDecryption(const KeySlot& slot, uint32_t ref);
  // Makes the next generation for `slot` under the key's primary version
  // and makes it the one ForEncryption returns (rotation).
  absl::StatusOr<Key> NewGeneration(const KeySlot& slot);
  // Forgets cached keys (after a rotation or an erasure).
  void Clear();

  KeyVault& vault() { return *vault_; }
  DataClient& client() { return *client_; }
  const std::string& key_name() const { return key_name_; }

 private:
  struct Entry {
    absl::Time created;
    std::atomic<uint64_t> messages{0}, bytes{0};
    Key key;
  };
  absl::StatusOr<std::shared_ptr<Entry>> Make(const KeySlot& slot, int64_t generation);
  absl::StatusOr<std::shared_ptr<Entry>> Unwrap(const VaultKey& stored, const KeySlot& slot);

  const std::string key_name_;
  std::shared_ptr<DataClient> client_;
  std::unique_ptr<KeyVault> vault_;
  format::SingleFlightCache<Entry> current_;  // by slot
  format::SingleFlightCache<Entry> by_ref_;   // by ref and slot
};

// "dataset\0class\0tenant": a cache partition that no two slots share.
std::string SlotKey(const KeySlot& slot);

}  // namespace keyward::fields

#endif  // KEYWARD_FIELDS_FIELD_KEYS_H_
