// Storage of keys and their versions.  Implementations: SqliteKeyStore (the
// embedded default), PostgresKeyStore (several keywardd replicas over one
// PostgreSQL database, docs/ha.md) and MemoryKeyStore (unit tests) —
// callers see only this interface.
//
// Consistency model: a key and all its versions form one aggregate that is
// read and written as a whole.  UpdateKey is a compare-and-swap on the key's
// revision, in one transaction, so concurrent writers (threads or replicas)
// cannot lose each other's changes: the loser gets kAborted and retries.
// Usage counters are the exception: they are added in batches (AddUsage)
// without touching revisions, because they change on every data key.
//
// Thread-safety: implementations are safe for concurrent use.
#ifndef KEYWARD_KEYSTORE_KEY_STORE_H_
#define KEYWARD_KEYSTORE_KEY_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "keystore/key_model.h"
#include "policy/breakglass.h"
#include "policy/grant.h"

namespace keyward::keystore {

struct StoreInfo {
  std::string environment;  // a store belongs to exactly one environment
  std::string backend;      // "sqlite:/path", "memory"
  int schema_version = 0;
  absl::Time created;
};

struct KeyPage {
  std::vector<Key> keys;
  std::string next_page_token;  // empty: no more
};

struct UsageDelta {
  std::string key_name;
  uint32_t version = 0;
  uint64_t data_keys_issued = 0;
  uint64_t decrypts = 0;
  absl::Time last_used;
  absl::Time last_decrypt = absl::InfinitePast();  // InfinitePast: no decrypt
};

// What a re-encryption job last found in one data set (a table column, a
// bucket) for one key: rows per key version.  The version retirement gate
// reads these.
struct DataSetReport {
  std::string data_set;  // e.g. "sqlite:/srv/app.db#payments.card"
  std::string key_name;
  std::map<uint32_t, uint64_t> rows_per_version;
  uint64_t rows_total = 0;  // rows under this key
  absl::Time reported;
  std::string reported_by;  // principal
};

// A tenant's key under one Keyward key (the tenant layer of data key blob
// version 2, kms/data_key_blob.h), as the key store holds it: sealed by the
// HSM root key while active; after erasure, a tombstone with no key material
// that keeps the tenant from ever getting a new key under that name.
struct TenantKeyRecord {
  std::string key_name;
  std::string tenant;
  std::string sealed;                 // empty once erased
  std::optional<absl::Time> created;  // nullopt: erased before it ever had a key
  std::optional<absl::Time> erased;
  std::string erased_by;              // the principal that erased it
  bool is_erased() const { return erased.has_value(); }
};

struct VersionRef {
  std::string key_name;
  uint32_t version = 0;
};

// A change committed to the store, for the caches of every keywardd
// replica sharing it (KeyStore::Watch).
struct StoreChange {
  enum class Kind {
    kKey,         // key_name's key or one of its versions changed
    kGrants,      // a grant was created or revoked
    kTenantKey,   // key_name's key for `tenant` was created or erased
    kSecret,      // the service secret named key_name was set (e.g. the policy)
    kEverything,  // changes may have been missed: forget every cached entry
  };
  Kind kind = Kind::kEverything;
  std::string key_name;  // kKey, kTenantKey, kSecret
  std::string tenant;    // kTenantKey: as the store knows it (may be empty: all)
};

// A lease on one piece of scheduled work (the rotation scheduler), held by
// one replica at a time (KeyStore::AcquireLease).
struct Lease {
  std::string name;
  std::string holder;
  // Grows by one each time the lease passes to a new holder and never goes
  // back, so work stamped with an older token is recognisably stale.
  uint64_t fencing_token = 0;
  absl::Time expires;  // by the store's clock
};

class KeyStore {
 public:
  virtual ~KeyStore() = default;

  [[nodiscard]] virtual absl::StatusOr<StoreInfo> GetInfo() = 0;

  // Stores a new key (revision becomes 1).  Errors: kAlreadyExists;
  // kInvalidArgument when ValidateKey fails or the key's environment is not
  // the store's.
  [[nodiscard]] virtual absl::Status CreateKey(const Key& key) = 0;

  // Errors: kNotFound.
  [[nodiscard]] virtual absl::StatusOr<Key> GetKey(absl::string_view name) = 0;

  // Keys whose names start with `prefix`, in name order, at most
  // `page_size` (1..1000) per page.  `page_token` is the previous page's
  // next_page_token (empty for the first page).
  [[nodiscard]] virtual absl::StatusOr<KeyPage> ListKeys(
      absl::string_view prefix, int page_size,
      absl::string_view page_token) = 0;

  // Replaces the stored key and its versions with `key` if the stored
  // revision equals `key.revision`; the stored revision becomes
  // key.revision + 1.  Versions are never removed.  Errors: kNotFound;
  // kAborted when another writer got there first (re-read and retry).
  [[nodiscard]] virtual absl::Status UpdateKey(const Key& key) = 0;

  // Adds usage counters in one transaction.  Unknown versions are skipped.
  [[nodiscard]] virtual absl::Status AddUsage(
      const std::vector<UsageDelta>& deltas) = 0;

  // Adds `delta` to one version's data key count (every encryption under
  // its KEK) in one durable transaction, and returns the new count.
  // keywardd reserves before it wraps (delta > 0: refused with
  // kResourceExhausted, nothing added, when the count would pass `limit`),
  // so a crash can only over-count; it gives back what it reserved and did
  // not use when it stops (delta < 0; `limit` is ignored).  Errors:
  // kNotFound for an unknown key or version.
  [[nodiscard]] virtual absl::StatusOr<uint64_t> AddDataKeysIssued(
      absl::string_view key_name, uint32_t version, int64_t delta, uint64_t limit) = 0;

  // Removes every copy of data the store no longer holds (for SQLite: its
  // write-ahead log, checkpointed and truncated, with deleted content
  // overwritten), so that a destroyed version's sealed KEK or an erased
  // tenant key is gone from the files too.  Called after a destruction and
  // after a tenant's erasure.
  [[nodiscard]] virtual absl::Status Scrub() = 0;

  // Versions in kPendingDestruction whose destroy_after is <= `now`, and
  // kDestroyed versions that still name an HSM object (its destruction was
  // interrupted: KeyService::ProcessDueDestructions finishes it).
  [[nodiscard]] virtual absl::StatusOr<std::vector<VersionRef>>
  ListDueDestructions(absl::Time now) = 0;

  // Number of keys (for health and benchmarks).
  [[nodiscard]] virtual absl::StatusOr<int64_t> CountKeys() = 0;

  // --- Grants (policy::Grant).  Errors: kAlreadyExists for a reused id.
  [[nodiscard]] virtual absl::Status CreateGrant(const policy::Grant& grant) = 0;
  // Grants not revoked and not expired at `now`; all grants when
  // `include_inactive`.
  [[nodiscard]] virtual absl::StatusOr<std::vector<policy::Grant>> ListGrants(
      absl::Time now, bool include_inactive) = 0;
  // Errors: kNotFound; kFailedPrecondition when already revoked.
  [[nodiscard]] virtual absl::Status RevokeGrant(absl::string_view id,
                                                 absl::Time when) = 0;

  // --- Break-glass grants (policy::BreakGlassGrant), each stored whole.
  // Errors: kAlreadyExists for a reused id.
  [[nodiscard]] virtual absl::Status CreateBreakGlass(const policy::BreakGlassGrant& grant) = 0;
  // Grants not closed (all of them when `include_closed`), oldest request
  // first.
  [[nodiscard]] virtual absl::StatusOr<std::vector<policy::BreakGlassGrant>> ListBreakGlass(
      bool include_closed) = 0;
  // In one transaction, serialized with every other writer (other
  // replicas' too): reads grant `id`, lets `update` change it and, when
  // `update` returns OK, stores the result and returns it.  `update` may
  // run more than once (a retried transaction) and must depend only on the
  // grant it is given.  This is how a decrypt under a grant is counted
  // before it is answered, so that no restart or replica exceeds the count.
  // Errors: kNotFound; `update`'s own (then nothing is stored).
  [[nodiscard]] virtual absl::StatusOr<policy::BreakGlassGrant> UpdateBreakGlass(
      absl::string_view id,
      const std::function<absl::Status(policy::BreakGlassGrant&)>& update) = 0;

  // --- Data set reports.  Put replaces the report for (data_set, key_name).
  [[nodiscard]] virtual absl::Status PutDataSetReport(const DataSetReport& report) = 0;
  // Every data set's latest report for `key_name`, by data set name.
  [[nodiscard]] virtual absl::StatusOr<std::vector<DataSetReport>> ListDataSetReports(
      absl::string_view key_name) = 0;

  // --- Tenant keys (TenantKeyRecord), one per (key name, tenant).  The
  // tenant is an opaque caller-chosen string, compared byte for byte.

  // The record, or nullopt when the tenant never had a key nor an erasure
  // under `key_name`.
  [[nodiscard]] virtual absl::StatusOr<std::optional<TenantKeyRecord>> GetTenantKey(
      absl::string_view key_name, absl::string_view tenant) = 0;
  // Stores a new active tenant key (`record.sealed` not empty, `created`
  // set, not erased) if (key name, tenant) has no record at all.  Errors:
  // kAlreadyExists when it has one — an active key another writer stored
  // first (re-read and use that one) or a tombstone (the tenant was erased);
  // kInvalidArgument for a record that is not a new active key.
  [[nodiscard]] virtual absl::Status PutTenantKey(const TenantKeyRecord& record) = 0;
  // Erases the tenant's key in one transaction: the sealed key is
  // overwritten with nothing and `when` and `by` recorded; a tenant without
  // a record gets a tombstone.  An already erased record is left as it was
  // (its first erasure stands).  Returns the record as it was before the
  // call, without its sealed bytes (nullopt: there was none).  The sealed
  // bytes may linger in the store's files until Scrub().
  [[nodiscard]] virtual absl::StatusOr<std::optional<TenantKeyRecord>> EraseTenantKey(
      absl::string_view key_name, absl::string_view tenant, absl::Time when,
      absl::string_view by) = 0;

  // --- Service secrets (for example the audit log's HMAC key), stored only
  // sealed by the HSM root key.  Put fails with kAlreadyExists when the name
  // is taken, so concurrent first starts agree on one secret.
  [[nodiscard]] virtual absl::StatusOr<std::optional<std::string>> GetSealedSecret(
      absl::string_view name) = 0;
  [[nodiscard]] virtual absl::Status PutSealedSecret(absl::string_view name,
                                                     absl::string_view sealed) = 0;
  // Creates or replaces a sealed value that changes over time (the audit
  // log's last sealed checkpoint).
  [[nodiscard]] virtual absl::Status SetSealedSecret(absl::string_view name,
                                                     absl::string_view sealed) = 0;

  // --- Several writers (keywardd replicas) over one store.

  // Delivers every change committed to the store, by this process or any
  // other, to `on_change` on a thread of the store's, within about a second
  // of its commit, until the store is destroyed.  After the store lost its
  // connection and got it back, kEverything is delivered first.  Callbacks
  // may read the store (through its other connections) but should be quick:
  // the next notifications wait for them.  Single-process stores (SQLite,
  // memory) deliver nothing:
  // their one writer updates its caches itself (this default).
  [[nodiscard]] virtual absl::Status Watch(std::function<void(const StoreChange&)> on_change) {
    (void)on_change;
    return absl::OkStatus();
  }

  // Takes lease `name` for `holder` until now + `ttl` (the store's clock)
  // when it is free, expired, or already `holder`'s (a renewal, which keeps
  // the fencing token).  Errors: kFailedPrecondition "held by H until T"
  // while another holder's lease runs; kUnavailable when the store is.
  [[nodiscard]] virtual absl::StatusOr<Lease> AcquireLease(absl::string_view name,
                                                           absl::string_view holder,
                                                           absl::Duration ttl);
  // Ends `holder`'s lease at once (a clean shutdown), so that another
  // replica takes over without waiting for it to expire.  A lease that
  // `holder` does not hold is left alone (OK).
  [[nodiscard]] virtual absl::Status ReleaseLease(absl::string_view name,
                                                  absl::string_view holder);

 private:
  // The in-process leases of single-process stores (the defaults above).
  std::mutex leases_mu_;
  std::map<std::string, Lease, std::less<>> leases_;  // GUARDED_BY(leases_mu_)
};

}  // namespace keyward::keystore

#endif  // KEYWARD_KEYSTORE_KEY_STORE_H_
