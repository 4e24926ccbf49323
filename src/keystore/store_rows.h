// Reading keys, versions and tenant keys out of a result row, shared by the
// SQLite and PostgreSQL stores (their columns have the same names, order
// and meaning).  `Row` has Text(col), Int(col) (int64_t), IsNull(col) and
// OptionalTime(col) (microseconds since the epoch); NULL reads as empty/0.
#ifndef KEYWARD_KEYSTORE_STORE_ROWS_H_
#define KEYWARD_KEYSTORE_STORE_ROWS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "keystore/key_model.h"
#include "keystore/key_store.h"
#include "keystore/store_common.h"

namespace keyward::keystore::internal {

// Columns first..first+9: name, purpose, suite, environment, labels,
// rotation_period_s, primary_version, created_us, updated_us, revision.
template <typename Row>
Key ReadKeyColumns(const Row& r, int first) {
  Key key;
  key.name = r.Text(first);
  key.purpose = static_cast<KeyPurpose>(r.Int(first + 1));
  key.suite = static_cast<Suite>(r.Int(first + 2));
  key.environment = r.Text(first + 3);
  key.labels = LabelsFromJson(r.Text(first + 4));
  key.rotation_period = absl::Seconds(r.Int(first + 5));
  key.primary_version = static_cast<uint32_t>(r.Int(first + 6));
  key.created = absl::FromUnixMicros(r.Int(first + 7));
  key.updated = absl::FromUnixMicros(r.Int(first + 8));
  key.revision = static_cast<uint64_t>(r.Int(first + 9));
  return key;
}

// Columns first..first+13: version, state, protection, sealed_kek,
// hsm_key_id, created_us, destroy_after_us, destroyed_us, data_keys_issued,
// decrypts, last_used_us, last_decrypt_us, drill_sample,
// state_before_destruction, compromised_us, compromise_reason,
// compromised_by (kVersionColumns).
template <typename Row>
KeyVersion ReadVersionColumns(const Row& r, int first) {
  KeyVersion v;
  v.version = static_cast<uint32_t>(r.Int(first));
  v.state = static_cast<VersionState>(r.Int(first + 1));
  v.protection = static_cast<KekProtection>(r.Int(first + 2));
  v.sealed_kek = r.Text(first + 3);
  v.hsm_key_id = r.Text(first + 4);
  v.created = absl::FromUnixMicros(r.Int(first + 5));
  v.destroy_after = r.OptionalTime(first + 6);
  v.destroyed = r.OptionalTime(first + 7);
  v.usage.data_keys_issued = static_cast<uint64_t>(r.Int(first + 8));
  v.usage.decrypts = static_cast<uint64_t>(r.Int(first + 9));
  v.usage.last_used = r.OptionalTime(first + 10);
  v.usage.last_decrypt = r.OptionalTime(first + 11);
  v.drill_sample = r.Text(first + 12);
  if (!r.IsNull(first + 13)) {
    v.state_before_destruction = static_cast<VersionState>(r.Int(first + 13));
  }
  if (!r.IsNull(first + 14)) {
    v.compromise = Compromise{absl::FromUnixMicros(r.Int(first + 14)), r.Text(first + 15),
                              r.Text(first + 16)};
  }
  return v;
}

// Columns 0..3: sealed, created_us, erased_us, erased_by.
template <typename Row>
TenantKeyRecord ReadTenantKeyColumns(const Row& r, absl::string_view key_name,
                                     absl::string_view tenant) {
  TenantKeyRecord record;
  record.key_name = std::string(key_name);
  record.tenant = std::string(tenant);
  record.sealed = r.Text(0);
  record.created = r.OptionalTime(1);
  record.erased = r.OptionalTime(2);
  record.erased_by = r.Text(3);
  return record;
}

}  // namespace keyward::keystore::internal

#endif  // KEYWARD_KEYSTORE_STORE_ROWS_H_
