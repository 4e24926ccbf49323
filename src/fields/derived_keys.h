// Keys derived from field data keys: the AES-256-SIV key of a
// deterministic column (format::DeterministicFieldKey) and the MAC key of
// a blind index version (BlindIndexKey), cached for as long as the data
// keys they come from may be.
//
// Thread-safe.
#ifndef KEYWARD_FIELDS_DERIVED_KEYS_H_
#define KEYWARD_FIELDS_DERIVED_KEYS_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crypto/deterministic_aead.h"
#include "fields/field_keys.h"
#include "fields/index_value.h"
#include "format/field_value.h"

namespace keyward::fields {

// The MAC key of one blind index version: HKDF-SHA-256 with the data keys
// of the index's classes (in class-name order) as input keying material,
// no salt, and info "keyward blind index v1" || u32-length-prefixed
// dataset, table, index name and version (decimal); 32 bytes.  A reader
// needs every class's data key, so an index over `pii` and `pci` fields
// is computable only by principals that may read both.
absl::StatusOr<SecretData> BlindIndexKey(const std::vector<const SecretData*>& class_keys,
                                         absl::string_view dataset, absl::string_view table,
                                         absl::string_view index, int64_t version);

class DerivedKeys {
 public:
  DerivedKeys(absl::Duration max_age, size_t max_entries)
      : max_age_(max_age), max_entries_(max_entries) {}

  // The deterministic AEAD for `where`'s column and tenant under `key`.
  absl::StatusOr<std::shared_ptr<const crypto::DeterministicAead>> Deterministic(
      const FieldKeys::Key& key, const format::FieldWhere& where);

  // The hasher of one blind index version.  `class_keys` by class name.
  absl::StatusOr<std::shared_ptr<const IndexHasher>> Index(
      const std::map<std::string, FieldKeys::Key>& class_keys, absl::string_view dataset,
      absl::string_view table, absl::string_view index, int64_t version, int bits);

  void Clear();

 private:
  template <typename T>
  struct Cached {
    std::shared_ptr<const T> value;
    absl::Time expires;
  };
  template <typename T>
  std::shared_ptr<const T> Find(absl::flat_hash_map<std::string, Cached<T>>& map,
                                const std::string& key) ABSL_LOCKS_EXCLUDED(mu_);
  template <typename T>
  void Put(absl::flat_hash_map<std::string, Cached<T>>& map, const std::string& key,
           std::shared_ptr<const T> value) ABSL_LOCKS_EXCLUDED(mu_);

  const absl::Duration max_age_;
  const size_t max_entries_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Cached<crypto::DeterministicAead>> deterministic_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Cached<IndexHasher>> indexes_ ABSL_GUARDED_BY(mu_);
  absl::Time next_sweep_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace keyward::fields

#endif  // KEYWARD_FIELDS_DERIVED_KEYS_H_
