// Field data keys as AEADs, by slot (data set, class, tenant) for
// encryption and by ref for decryption: the key vault below, keywardd
// behind it, a bounded single-flight cache in front, and in front of that
// a read-mostly map for the hot path (a cached key costs one map lookup
// under a reader lock).
//
// Thread-safe.
#ifndef KEYWARD_FIELDS_FIELD_KEYS_H_
#define KEYWARD_FIELDS_FIELD_KEYS_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "crypto/internal/nonce_aead.h"
#include "fields/key_vault.h"
#include "format/single_flight_cache.h"
#include "keyward/caching_unwrapper.h"
#include "keyward/data_client.h"

namespace keyward::fields {

// A slot as views (the hot path builds no strings).
struct SlotView {
  absl::string_view dataset, class_name, tenant;
  SlotView(absl::string_view d, absl::string_view c, absl::string_view t)
      : dataset(d), class_name(c), tenant(t) {}
  SlotView(const KeySlot& s)  // NOLINT: implicit on purpose
      : dataset(s.dataset), class_name(s.class_name), tenant(s.tenant) {}
  KeySlot Copy() const {
    return KeySlot{std::string(dataset), std::string(class_name), std::string(tenant)};
  }
};

class FieldKeys {
 public:
  struct Key {
    uint32_t ref = 0;
    uint32_t kek_version = 0;
    int64_t generation = 0;
    std::shared_ptr<const crypto::internal::NonceAead> aead;
    // The data key itself, from which deterministic and blind index keys
    // are derived (fields/derived_keys.h).
    std::shared_ptr<const SecretData> secret;
  };

  FieldKeys(std::string key_name, std::shared_ptr<DataClient> client,
            std::unique_ptr<KeyVault> vault, CacheLimits limits);

  // The slot's newest key; generation 1 is made (by keywardd, stored in the
  // vault) when the slot has none.  Two processes racing agree on one.
  absl::StatusOr<Key> ForEncryption(const SlotView& slot);
  // The key `ref` names, which must belong to `slot`: a value whose ref
  // points at another class's or tenant's key fails here, and keywardd
  // checks the same through the key's encryption context.
  absl::StatusOr<Key> ForDecryption(const SlotView& slot, uint32_t ref);
  // Makes the next generation for `slot` under the key's primary version
  // and makes it the one ForEncryption returns (rotation).
  absl::StatusOr<Key> NewGeneration(const KeySlot& slot);
  // Forgets cached keys (after a rotation or an erasure), and calls the
  // hook that forgets what was derived from them.
  void Clear();
  void set_on_clear(std::function<void()> hook) { on_clear_ = std::move(hook); }

  KeyVault& vault() { return *vault_; }
  DataClient& client() { return *client_; }
  const std::string& key_name() const { return key_name_; }

 private:
  struct Entry {
    absl::Time created;
    std::atomic<uint64_t> messages{0}, bytes{0};
    Key key;
  };
  struct Hot {
    Key key;
    int64_t expires_ns = 0;  // CLOCK_MONOTONIC_COARSE
  };
  using HotMap = absl::flat_hash_map<std::string, Hot>;

  absl::StatusOr<std::shared_ptr<Entry>> Make(const KeySlot& slot, int64_t generation);
  absl::StatusOr<std::shared_ptr<Entry>> Unwrap(const VaultKey& stored, const KeySlot& slot);
  bool FindHot(HotMap& map, const std::string& key, Key* out, int64_t* expires_ns);
  // Returns the entry's deadline on the coarse clock (0: already too old, or
  // the caches were cleared since `epoch` was read: the entry is dropped).
  int64_t PutHot(HotMap& map, const std::string& key, const Entry& entry, uint64_t epoch);
  // Drops expired keys from every cache (at most once a second), so a key
  // nobody asks for again is still wiped soon after its max age.
  void SweepIfDue();
  void SweepLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(hot_mu_);
  // The last key each thread used for each direction, checked before the
  // shared maps: rows of one tenant and class come in runs.
  bool FromMemo(bool encrypt, const SlotView& slot, uint32_t ref, Key* out) const;
  void ToMemo(bool encrypt, const SlotView& slot, const Key& key, int64_t expires_ns) const;

  const std::string key_name_;
  std::shared_ptr<DataClient> client_;
  std::unique_ptr<KeyVault> vault_;
  const CacheLimits limits_;
  std::function<void()> on_clear_;
  format::SingleFlightCache<Entry> current_;  // by slot
  format::SingleFlightCache<Entry> by_ref_;   // by ref and slot
  const uint64_t id_;                 // unique per instance, for the memo
  std::atomic<uint64_t> epoch_{0};    // bumped by Clear: invalidates memos
  std::atomic<int64_t> next_sweep_ns_{0};
  absl::Mutex hot_mu_;
  HotMap hot_current_ ABSL_GUARDED_BY(hot_mu_);
  HotMap hot_by_ref_ ABSL_GUARDED_BY(hot_mu_);
};

// OK when `wrapped` is a data key blob of `key_name` (and, for a slot with a
// tenant, a tenant-sealed one, version 2): checked before anything is sent
// to keywardd, so a key table row cannot substitute a data key of another
// Keyward key.  Errors: kInvalidArgument (ErrorCode kAuthenticationFailed).
absl::Status CheckWrappedBelongs(absl::string_view wrapped, const std::string& key_name,
                                 const KeySlot& slot, uint32_t ref);

// "dataset\0class\0tenant": a cache key that no two slots share.
std::string SlotKey(const SlotView& slot);

}  // namespace keyward::fields

#endif  // KEYWARD_FIELDS_FIELD_KEYS_H_
