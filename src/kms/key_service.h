// KeyService: the core of keywardd, with no network in it.  It owns the
// key hierarchy (HSM root key → KEK per key version → data keys), enforces
// the lifecycle rules, and serves the data key operations.  The gRPC server
// is a thin layer over it (src/server); tests drive it directly.
//
// One class, implemented in parts with one job each: key_service.cc
// (construction, reading and changing keys), key_versions.cc (the version
// lifecycle), data_keys.cc, small_payloads.cc, retirement.cc,
// drill_samples.cc and tenant_erasure.cc, over KeyCache (keys and unsealed
// KEKs), TenantKeys (the tenant layer's keys) and UsageRecorder (usage
// counters).
//
// Thread-safety: every method is safe to call concurrently.
#ifndef KEYWARD_KMS_KEY_SERVICE_H_
#define KEYWARD_KMS_KEY_SERVICE_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hsm/root_of_trust.h"
#include "keystore/key_store.h"
#include "keyward/keyring.h"
#include "kms/clock.h"
#include "kms/data_key_blob.h"
#include "kms/key_cache.h"
#include "kms/tenant_keys.h"
#include "kms/usage_recorder.h"

namespace keyward::kms {

struct KeyServiceOptions {
  std::string environment;  // "dev", "staging", "production", ...
  // New versions' KEKs: wrapped by the root key (default) or HSM resident.
  keystore::KekProtection default_protection =
      keystore::KekProtection::kWrappedByRoot;
  absl::Duration default_destruction_wait = absl::Hours(24 * 30);
  // The shortest waiting period a caller may ask for.  Tests lower it.
  absl::Duration min_destruction_wait = absl::Hours(24);
  // Encryptions under one version's KEK — data keys issued, rewraps, header
  // rewraps, drill samples — before it refuses more (the random-nonce bound
  // of docs/decisions/0003).  The scheduler rotates well before.  Counted
  // durably in blocks reserved before use, so a crash can only over-count.
  uint64_t max_data_keys_per_version = uint64_t{1} << 30;
  // The retirement gate: a version may be disabled or scheduled for
  // destruction (without force) only after this long without a decrypt.
  absl::Duration retirement_quiet_period = absl::Hours(24 * 7);
  // In production a software token is refused unless this is set (and then
  // a warning is printed at every start).
  bool allow_software_hsm = false;
  // Usage counters are batched in memory and written this often (and on
  // shutdown).  Zero: only when FlushUsage() is called (tests).
  absl::Duration usage_flush_interval = absl::Seconds(1);
  // Unsealed tenant keys kept in memory (kms/tenant_keys.h), 32 bytes of
  // locked memory each; the least recently used go first.
  size_t max_cached_tenant_keys = 1024;
  Clock* clock = Clock::Real();
};

struct CreateKeyRequest {
  std::string name;
  keystore::KeyPurpose purpose = keystore::KeyPurpose::kEnvelopeEncryption;
  Suite suite = Suite::kAes256GcmHkdfSha256Commit;
  std::map<std::string, std::string> labels;
  absl::Duration rotation_period = absl::ZeroDuration();
  std::optional<keystore::KekProtection> protection;  // default from options
};

struct UpdateKeyRequest {
  std::optional<absl::Duration> rotation_period;
  std::map<std::string, std::string> set_labels;
  std::vector<std::string> remove_labels;
};

// A data key: plaintext for the caller to use and forget, and the wrapped
// blob (kms/data_key_blob.h) to store beside the data.
struct DataKey {
  SecretData plaintext;  // empty for GenerateDataKeyWithoutPlaintext
  std::string wrapped;
  KeyReference key;
};

struct WrappedKey {
  std::string wrapped;
  KeyReference key;
};

// What KeyService::CompromiseVersion did.
struct CompromiseResult {
  keystore::Key key;      // after the call
  uint32_t new_primary = 0;  // the version made primary in its place; 0: none
  bool already = false;   // it was compromised before: nothing changed
  // The latest data set reports that still count rows under the version:
  // what has to be re-encrypted.
  std::vector<keystore::DataSetReport> data_sets;
};

struct DecryptRequest {
  std::string wrapped;
  EncryptionContext context;
};

class KeyService {
 public:
  // Checks the HSM against the environment's rules and the store's
  // environment.  Errors: kFailedPrecondition for a software HSM in
  // production without allow_software_hsm, or a store of another
  // environment.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<KeyService>> Create(
      KeyServiceOptions options, std::shared_ptr<keystore::KeyStore> store,
      std::shared_ptr<hsm::RootOfTrust> root);
  // Flushes usage counters.
  ~KeyService();

  // Items per batch call (data keys, wrapped keys, headers).
  static constexpr int kMaxBatch = 10000;

  const std::string& environment() const { return options_.environment; }
  hsm::HsmInfo hsm_info() const { return root_->Info(); }

  // --- Keys.  Returned keys never carry key material (sealed KEKs are
  // cleared); usage counters include what is not yet flushed.

  // Creates a key with version 1 as its primary.  Errors: kAlreadyExists,
  // kInvalidArgument (name, labels), kUnavailable (HSM or store).
  [[nodiscard]] absl::StatusOr<keystore::Key> CreateKey(
      const CreateKeyRequest& request);
  [[nodiscard]] absl::StatusOr<keystore::Key> GetKey(absl::string_view name);
  [[nodiscard]] absl::StatusOr<keystore::KeyPage> ListKeys(
      absl::string_view prefix, int page_size, absl::string_view page_token);
  // Adds a version and makes it primary; the former primary becomes
  // decrypt-only.  One transaction.  The new version gets a drill sample.
  [[nodiscard]] absl::StatusOr<keystore::Key> RotateKey(absl::string_view name);
  // Rotates only if `due` still says so inside the transaction (so two
  // schedulers cannot both rotate).  Returns nullopt when it was not due.
  [[nodiscard]] absl::StatusOr<std::optional<keystore::Key>> RotateKeyIf(
      absl::string_view name, const std::function<bool(const keystore::Key&)>& due);

  // --- Data set reports (the retirement gate's evidence).  Errors:
  // kNotFound for an unknown key, kInvalidArgument for an unknown version.
  [[nodiscard]] absl::Status ReportDataSet(keystore::DataSetReport report);
  [[nodiscard]] absl::StatusOr<std::vector<keystore::DataSetReport>> ListDataSetReports(
      absl::string_view name);

  // The plaintext of a version's drill sample.
  static std::string DrillPlaintext(absl::string_view name, uint32_t version);
  [[nodiscard]] absl::StatusOr<keystore::Key> UpdateKey(
      absl::string_view name, const UpdateKeyRequest& request);
  // Enabled versions may decrypt and may be made primary.
  [[nodiscard]] absl::StatusOr<keystore::Key> EnableVersion(
      absl::string_view name, uint32_t version);
  // Errors: kFailedPrecondition for the primary version, and (unless
  // `force`) when the retirement gate refuses (CheckRetirement).
  [[nodiscard]] absl::StatusOr<keystore::Key> DisableVersion(
      absl::string_view name, uint32_t version, bool force = false);
  // The version retirement gate: OK when keywardd has evidence that nothing
  // references `version` any more — every data set report registered
  // against the key shows zero rows on it, and it served no decrypt for
  // retirement_quiet_period.  Otherwise kFailedPrecondition saying what
  // still references it and what to do.
  [[nodiscard]] absl::Status CheckRetirement(absl::string_view name, uint32_t version);
  // Makes an enabled version primary (undoing a rotation).
  [[nodiscard]] absl::StatusOr<keystore::Key> SetPrimaryVersion(
      absl::string_view name, uint32_t version);
  // Schedules destruction after `wait` (default: options; at least the
  // minimum).  The primary version can be scheduled only when it is the
  // last version that can decrypt, and only with `force` (crypto-shredding
  // the whole key).  Without `force` the retirement gate applies too.
  // Errors: kFailedPrecondition, kInvalidArgument.
  [[nodiscard]] absl::StatusOr<keystore::Key> ScheduleVersionDestruction(
      absl::string_view name, uint32_t version,
      std::optional<absl::Duration> wait, bool force);
  // Back to the state the version had when it was scheduled (disabled,
  // decrypt-only, or enabled for a primary).
  [[nodiscard]] absl::StatusOr<keystore::Key> CancelVersionDestruction(
      absl::string_view name, uint32_t version);
  // Destroys every version whose waiting period has ended: marks it
  // destroyed and erases its KEK in the store (re-checking, in the same
  // change, that it is still due: a concurrent cancel wins), then destroys
  // the HSM object of resident versions, then scrubs the store's files
  // (KeyStore::Scrub).  A failed step does not stop the run nor hide what
  // was destroyed; it is retried by the next run (HSM objects of destroyed
  // versions, a scrub), and crash-safe in the same way.
  struct DestructionRun {
    std::vector<keystore::VersionRef> destroyed;  // by this run
    absl::Status status;  // the first step that failed, if any
  };
  [[nodiscard]] DestructionRun ProcessDueDestructions();

  // --- Compromise response (compromise.cc).
  static constexpr size_t kMaxCompromiseReason = 1024;
  // Declares `version` of `name` compromised, for good: in one change of
  // the key, an enabled version becomes decrypt-only and, when it was the
  // primary, a new version is made and becomes primary; the version is
  // marked (when, `reason`, `by`).  (A primary already scheduled for
  // destruction — the key being crypto-shredded — is only marked.)  From then on it never wraps a data key
  // and cannot be enabled as such or made primary again; its data keys
  // still unwrap (to re-encrypt the data), and callers flag each such
  // unwrap (IsCompromised).  Every replica sees it through the store's
  // change notification.  Idempotent: a second call changes nothing and
  // reports `already`.  Errors: kInvalidArgument (reason empty or over
  // kMaxCompromiseReason), kNotFound (key or version), kFailedPrecondition
  // (a destroyed version), the store's and the HSM's.
  [[nodiscard]] absl::StatusOr<CompromiseResult> CompromiseVersion(absl::string_view name,
                                                                   uint32_t version,
                                                                   absl::string_view reason,
                                                                   absl::string_view by);
  // Whether `version` of `name` is marked compromised, as this process's
  // cache knows it; false for an unknown key or version.
  bool IsCompromised(absl::string_view name, uint32_t version);

  // --- Data keys.  Every operation takes the encryption context that is
  // bound into the wrapped data key.  A context holding kTenantContextKey
  // (keyward/keyring.h) gets the tenant layer: the data key is sealed under
  // that tenant's key too (blob version 2, kms/data_key_blob.h), the tenant
  // key being made by the first generate or wrap for the tenant.  Then the
  // operations also fail with kFailedPrecondition (ErrorCode kTenantErased)
  // once the tenant was erased (EraseTenant), and kInvalidArgument when the
  // tenant value is empty.

  // Errors: kNotFound (key), kFailedPrecondition (no enabled primary, wrong
  // purpose, usage limit reached), kUnavailable.
  [[nodiscard]] absl::StatusOr<DataKey> GenerateDataKey(
      absl::string_view name, const EncryptionContext& context);
  [[nodiscard]] absl::StatusOr<WrappedKey> GenerateDataKeyWithoutPlaintext(
      absl::string_view name, const EncryptionContext& context);
  // Up to 10,000 data keys under one key in one call.
  [[nodiscard]] absl::StatusOr<std::vector<DataKey>> GenerateDataKeys(
      absl::string_view name, const EncryptionContext& context, int count);
  // Errors (typed, keyward/errors.h): kEnvironmentMismatch naming both
  // environments; kContextMismatch (also: a tenant's data key without its
  // tenant in the context, or a data key without a tenant layer presented
  // with one); kAuthenticationFailed (tampered, or moved to another key or
  // version); kTenantErased; kNotFound (key, version, or a tenant that never
  // had a key);
  // kFailedPrecondition for a disabled, pending or destroyed version, naming
  // key and version and saying what to do.
  // `reader` false: the unwrap serves re-encryption, so it is counted but
  // does not move the version's last decrypt (the retirement gate's "still
  // read" evidence).
  [[nodiscard]] absl::StatusOr<SecretData> DecryptDataKey(
      absl::string_view wrapped, const EncryptionContext& context, bool reader = true);
  // Per-item results, in order.  At most 10,000 per call.
  [[nodiscard]] absl::StatusOr<std::vector<absl::StatusOr<SecretData>>>
  DecryptDataKeys(const std::vector<DecryptRequest>& requests, bool reader = true);
  // Unwraps and wraps again under the key's primary version, without
  // returning the data key (not a reader's decrypt).
  [[nodiscard]] absl::StatusOr<WrappedKey> ReWrapDataKey(
      absl::string_view wrapped, const EncryptionContext& context);
  // Wraps a caller-supplied data key under `name`'s primary (used by the
  // in-process keyring for header rewrap; not exposed to clients).
  [[nodiscard]] absl::StatusOr<WrappedKey> WrapDataKey(
      absl::string_view name, const SecretData& data_key,
      const EncryptionContext& context);

  // --- Small payloads (≤ 64 KiB): a Keyward message whose data key is
  // wrapped by `name`.
  static constexpr size_t kMaxPayload = 64 << 10;
  [[nodiscard]] absl::StatusOr<std::string> Encrypt(
      absl::string_view name, absl::string_view plaintext,
      const EncryptionContext& context);
  // Decrypts through `key_name` only: entries wrapped by any other key are
  // not unwrapped (the caller authorized `key_name`).
  [[nodiscard]] absl::StatusOr<SecretData> Decrypt(
      absl::string_view key_name, absl::string_view message, const EncryptionContext& context);

  // --- Tenant erasure (crypto-shredding one tenant's data keys).  `tenant`
  // is the value data keys carried under kTenantContextKey.  Errors:
  // kNotFound (key), kInvalidArgument (an empty or over-long tenant), the
  // store's and the HSM's.

  // Where the tenant stands under key `name`; changes nothing.
  [[nodiscard]] absl::StatusOr<TenantKeyStatus> GetTenantStatus(absl::string_view name,
                                                                absl::string_view tenant);
  // Erases the tenant's key under `name`: overwritten in the store, which
  // keeps a tombstone (when, by whom) so the tenant never gets a new key
  // there, dropped from this process's cache, and scrubbed from the store's
  // files.  Every data key issued for the tenant under `name` then fails
  // with kTenantErased, here and on every replica that reads the store
  // (other replicas drop their cached copy on the store's change
  // notification, OnStoreChange).  Idempotent:
  // erasing an erased tenant changes nothing and reports state_before
  // kErased with the first erasure.  A tenant that never had a key gets a
  // tombstone too.  Errors also: kUnavailable when the erasure committed
  // but the scrub failed (retried by the next erasure or destruction run;
  // the message says so).
  [[nodiscard]] absl::StatusOr<TenantErasure> EraseTenant(absl::string_view name,
                                                          absl::string_view tenant,
                                                          absl::string_view by);

  // The HSM answers and the key store can be read (a few cheap calls).
  // Errors: kUnavailable naming which.
  [[nodiscard]] absl::Status CheckHealth();

  // Writes pending usage counters now.
  [[nodiscard]] absl::Status FlushUsage();

  // A change another replica committed to the shared store
  // (KeyStore::Watch): the caches holding what changed re-read it, so a
  // rotation, disablement, destruction or tenant erasure made through any
  // replica is honoured here as soon as the notification arrives.
  void OnStoreChange(const keystore::StoreChange& change);

 private:
  KeyService(KeyServiceOptions options,
             std::shared_ptr<keystore::KeyStore> store,
             std::shared_ptr<hsm::RootOfTrust> root);

  // --- key_service.cc: reading and changing keys.
  // What callers see of a key: no sealed KEKs; usage counters as
  // UsageRecorder::ShowUnflushed makes them.
  keystore::Key Public(const keystore::Key& key);
  // Read-modify-write of one key with retries on concurrent updates; the
  // cache learns the new state.  Returns the key as Public shows it.
  absl::StatusOr<keystore::Key> Mutate(
      absl::string_view name, absl::FunctionRef<absl::Status(keystore::Key&)> m);

  // --- key_versions.cc: a new version's KEK, from the HSM.
  absl::StatusOr<keystore::KeyVersion> NewVersion(const keystore::Key& key,
                                                  uint32_t version,
                                                  keystore::KekProtection p);

  // --- drill_samples.cc: gives the key's primary version (when still the
  // one that made the message) its drill sample: a message under it whose
  // plaintext is DrillPlaintext.
  void AttachDrillSample(const std::string& name);

  // --- data_keys.cc.
  // An encryption context serialized once per request (or per run of equal
  // contexts in a batch).
  struct PreparedContext {
    std::string serialized;
    std::string digest;
    // The kTenantContextKey value, if the context has that key.
    std::optional<std::string> tenant;
  };
  static PreparedContext Prepare(const EncryptionContext& context);
  // Decrypts one wrapped key; its usage is added to `decrypts` (a per-call
  // tally recorded once) rather than recorded here.
  absl::StatusOr<SecretData> Decrypt1(
      absl::string_view wrapped, const PreparedContext& context,
      std::map<std::pair<std::string, uint32_t>, uint64_t>* decrypts);

  const KeyServiceOptions options_;
  // Shared with keywardd's other parts (access control, audit anchor),
  // which get them at construction, not through the core.
  const std::shared_ptr<keystore::KeyStore> store_;
  const std::shared_ptr<hsm::RootOfTrust> root_;

  KeyCache cache_;
  TenantKeys tenants_;
  UsageRecorder usage_;

  // A destruction's scrub failed: the next ProcessDueDestructions retries.
  std::atomic<bool> scrub_owed_{false};
};

}  // namespace keyward::kms

#endif  // KEYWARD_KMS_KEY_SERVICE_H_
