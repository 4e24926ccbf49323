// keyward::AdminClient: what tools need from keywardd — keys and their
// versions, tenant erasure, the access policy and grants, the audit log,
// and the rotation evidence (data set reports, drill samples).  Applications that only
// encrypt and decrypt link keyward/data_client.h instead.
//
// Errors are the server's, with their Keyward error codes
// (keyward/errors.h).  Thread-safety: safe for concurrent use.
#ifndef KEYWARD_ADMIN_CLIENT_H_
#define KEYWARD_ADMIN_CLIENT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "keyward/connection.h"
#include "keyward/keyring.h"
#include "keyward/message.h"

namespace keyward {

// What a key's versions may be used for.
enum class KeyPurpose {
  kUnknown = 0,  // a purpose this SDK does not know (a newer server)
  kEnvelopeEncryption,
  kDeterministicEncryption,
  kBlindIndex,
};

// A key version's lifecycle (docs/rotation.md):
//   enabled -rotate-> decrypt-only -disable-> disabled -schedule->
//   pending-destruction -(waiting period)-> destroyed
enum class KeyVersionState {
  kUnknown = 0,  // a state this SDK does not know (a newer server)
  kEnabled,
  kDecryptOnly,
  kDisabled,
  kPendingDestruction,
  kDestroyed,
};

// Where a version's KEK lives.
enum class KeyProtection {
  kServerDefault = 0,  // on create: keywardd's default_protection
  kWrappedByRoot,      // sealed by the HSM root key, unsealed in memory
  kHsmResident,        // a non-extractable object in the HSM
};

// The names keywardd and the CLI use: "envelope-encryption", "enabled",
// "decrypt-only", "hsm-resident", ...  ("unknown", "server-default").
absl::string_view KeyPurposeName(KeyPurpose purpose);
absl::string_view KeyVersionStateName(KeyVersionState state);
absl::string_view KeyProtectionName(KeyProtection protection);
// The inverse; kUnknown / kServerDefault for a name it does not know.
KeyPurpose KeyPurposeFromName(absl::string_view name);
KeyVersionState KeyVersionStateFromName(absl::string_view name);
// Errors: kInvalidArgument listing the names it accepts.
absl::StatusOr<KeyProtection> ParseKeyProtection(absl::string_view name);

// True for the states whose data keys still decrypt.
inline bool CanDecrypt(KeyVersionState state) {
  return state == KeyVersionState::kEnabled || state == KeyVersionState::kDecryptOnly;
}

struct KeyVersionInfo {
  uint32_t version = 0;
  KeyVersionState state = KeyVersionState::kUnknown;
  KeyProtection protection = KeyProtection::kServerDefault;
  absl::Time created;
  std::optional<absl::Time> destroy_after;
  std::optional<absl::Time> destroyed;
  uint64_t data_keys_issued = 0;
  uint64_t decrypts = 0;
  std::optional<absl::Time> last_used;
  std::optional<absl::Time> last_decrypt;  // a reader's, not a re-encryption's
  // Declared compromised (AdminClient::CompromiseVersion); absent: never.
  std::optional<absl::Time> compromised;
  std::string compromise_reason;
  std::string compromised_by;
};

struct KeyInfo {
  std::string name;
  KeyPurpose purpose = KeyPurpose::kUnknown;
  Suite suite = Suite::kAes256GcmHkdfSha256Commit;
  std::string environment;
  std::map<std::string, std::string> labels;
  absl::Duration rotation_period = absl::ZeroDuration();
  uint32_t primary_version = 0;
  absl::Time created;
  absl::Time updated;
  std::vector<KeyVersionInfo> versions;
};

struct CreateKeyOptions {
  std::map<std::string, std::string> labels;
  absl::Duration rotation_period = absl::ZeroDuration();
  KeyProtection protection = KeyProtection::kServerDefault;
  std::optional<Suite> suite;  // absent: AES-256-GCM-HKDF-SHA256-COMMIT
};

struct KeyUpdate {
  std::optional<absl::Duration> rotation_period;
  std::map<std::string, std::string> set_labels;
  std::vector<std::string> remove_labels;
};

struct KeyList {
  std::vector<KeyInfo> keys;
  std::string next_page_token;
};

// Rotation (docs/rotation.md).
struct DataSetReportInfo {
  std::string data_set;  // e.g. "sqlite:/srv/app.db#orders.card"
  std::string key_name;
  std::map<uint32_t, uint64_t> rows_per_version;
  uint64_t rows_total = 0;
  absl::Time reported;      // set by keywardd
  std::string reported_by;  // set by keywardd
};

// What AdminClient::CompromiseVersion did.
struct CompromiseInfo {
  KeyInfo key;                   // after the call
  uint32_t new_primary_version = 0;  // made primary in its place; 0: none
  bool already_compromised = false;  // declared before: nothing changed
  // Data sets whose latest re-encryption report still counts rows on the
  // version: what must be re-encrypted (docs/operations.md).
  std::vector<DataSetReportInfo> data_sets;
};

struct DrillSampleInfo {
  uint32_t version = 0;
  KeyVersionState state = KeyVersionState::kUnknown;
  std::string message;             // empty: the version predates drills
  std::string expected_plaintext;  // not secret
};

// Tenant erasure (docs/security.md#tenant-erasure).
struct EraseTenantOptions {
  // Report what an erasure would find, and change nothing (audited).
  bool dry_run = false;
};

struct TenantErasure {
  // Where a tenant stands under one key.
  enum class State {
    kUnknown = 0,  // a state this SDK does not know (a newer server)
    kNone,         // never used under the key, never erased
    kActive,       // has a key: its data keys decrypt
    kErased,       // erased: its data keys never decrypt again
  };
  // Where the tenant stood before this call (a dry run: where it stands).
  State state = State::kUnknown;
  std::optional<absl::Time> created;  // its key was made; absent: it never had one
  // The erasure: this call's, or the earlier one that stands.  Absent on a
  // dry run of a tenant not yet erased.
  std::optional<absl::Time> erased;
  std::string erased_by;  // the principal that erased it
  bool dry_run = false;
};
// "none", "active", "erased" ("unknown").
absl::string_view TenantStateName(TenantErasure::State state);

// Access control (docs/policy.md).
struct PolicyDecision {
  bool allowed = false;
  std::string rule;    // the rule, or "grant:<id>"; empty for the default deny
  std::string reason;
};

struct GrantSpec {
  std::string principal;
  std::string key;  // name or glob
  std::vector<std::string> operations;
  EncryptionContext context;  // pairs a request must carry
  absl::Duration ttl = absl::Hours(1);  // 1 second .. 90 days
  std::string reason;
};

struct GrantInfo {
  std::string id;
  std::string principal;
  std::string key;
  std::vector<std::string> operations;
  EncryptionContext context;
  absl::Time created;
  absl::Time expires;
  std::optional<absl::Time> revoked;
  std::string created_by;
  std::string reason;
};

// Break-glass grants (docs/incident-response.md).
struct BreakGlassSpec {
  std::string key;            // one key name
  EncryptionContext context;  // pairs every decrypt under the grant must carry
  std::string reason;         // required
  absl::Duration duration = absl::Hours(1);  // from approval; the policy caps it
  uint64_t max_decrypts = 0;  // 0: no count limit
};

struct BreakGlassInfo {
  struct Approval {
    std::string principal;
    absl::Time time;
  };
  std::string id;
  std::string requester;
  std::string key;
  EncryptionContext context;
  std::string reason;
  std::string policy_entry;
  int quorum = 0;
  absl::Duration duration;
  uint64_t max_decrypts = 0;
  uint64_t decrypts = 0;
  absl::Time requested;
  absl::Time request_expires;
  std::vector<Approval> approvals;
  std::optional<absl::Time> activated;
  absl::Time expires;  // pending: when the request lapses
  std::optional<absl::Time> revoked;
  std::string revoked_by;
  std::string state;  // pending, active, expired, exhausted, revoked, lapsed
};

// The audit log (docs/audit.md).  Hashes are 32 raw bytes.
struct AuditCheckpointInfo {
  std::string environment;
  uint64_t tree_size = 0;
  std::string root_hash;
  absl::Time time;
  std::string key_fingerprint;
  std::string signature;       // DER ECDSA P-256 SHA-256
  std::string line;            // as stored in checkpoints.log
  std::string public_key_pem;  // the key that signed it
};

struct AuditInclusionProof {
  uint64_t index = 0;
  uint64_t tree_size = 0;
  std::string leaf_hash;
  std::vector<std::string> path;
  std::string root_hash;
};

struct AuditConsistencyProof {
  uint64_t from_size = 0;
  uint64_t to_size = 0;
  std::vector<std::string> path;
  std::string from_root;
  std::string to_root;
};

struct AuditQuery {
  uint64_t from_index = 0;
  bool from_end = false;  // the last `limit` records
  int limit = 1000;       // 1..10000
  std::optional<absl::Time> since, until;
  std::string principal, key, operation, decision;
  EncryptionContext context;  // matched by keyed hash; never sent back in clear
};

struct AuditPage {
  std::vector<std::string> records;  // JSON lines as stored
  uint64_t next_index = 0;           // continue from here
  uint64_t size = 0;                 // records in the log
};

// One segment of keywardd's audit directory (docs/audit.md).
struct AuditSegmentInfo {
  uint64_t first_index = 0, records = 0, bytes = 0;
  bool closed = false;
  std::string sha256;  // raw 32 bytes
  std::optional<absl::Time> first_time, last_time;
  std::string archived_to;  // empty: not archived
  std::optional<absl::Time> archived_at;
  std::string file;
};

struct AuditSegments {
  bool segmented = false;       // false: a log in PostgreSQL, no segments
  uint64_t pruned_records = 0;  // records before the first segment
  std::vector<AuditSegmentInfo> segments;  // oldest first; the last is open
};

struct AuditPruneRequest {
  absl::Time before;  // closed segments whose last record is before this
  bool force = false;  // prune unarchived ones too (recorded as forced)
  bool dry_run = false;
  std::string reason;  // recorded, at most 256 bytes
};

struct AuditPruneResult {
  std::vector<AuditSegmentInfo> segments;  // removed (or that would be)
  uint64_t pruned_before = 0, pruned_after = 0;
  uint64_t unarchived = 0;
};

class AdminClient {
 public:
  // Opens a connection of its own (Connection::Open's errors).
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<AdminClient>> Connect(
      const ClientOptions& options);
  // Over a connection shared with other clients (not null).
  explicit AdminClient(std::shared_ptr<Connection> connection);

  const ClientOptions& options() const { return connection_->options(); }
  [[nodiscard]] absl::StatusOr<ServerInfo> GetServerInfo(bool check_health = false);

  // Keys.  Errors are the server's, with their Keyward error codes.
  [[nodiscard]] absl::StatusOr<KeyInfo> CreateKey(const std::string& name,
                                                  const CreateKeyOptions& options = {});
  [[nodiscard]] absl::StatusOr<KeyInfo> GetKey(const std::string& name);
  [[nodiscard]] absl::StatusOr<KeyList> ListKeys(const std::string& prefix = "",
                                                 int page_size = 100,
                                                 const std::string& page_token = "");
  [[nodiscard]] absl::StatusOr<KeyInfo> RotateKey(const std::string& name);
  [[nodiscard]] absl::StatusOr<KeyInfo> UpdateKey(const std::string& name,
                                                  const KeyUpdate& update);
  [[nodiscard]] absl::StatusOr<KeyInfo> EnableVersion(const std::string& name, uint32_t version);
  // Refused (kFailedPrecondition) while the retirement gate sees the version
  // still referenced (docs/rotation.md), unless `force` (audited).
  [[nodiscard]] absl::StatusOr<KeyInfo> DisableVersion(const std::string& name, uint32_t version,
                                                       bool force = false);
  [[nodiscard]] absl::StatusOr<KeyInfo> SetPrimaryVersion(const std::string& name, uint32_t version);
  // `wait` absent: the server's default (30 days).  A wait below the
  // server's minimum, zero included, is refused (kInvalidArgument).
  [[nodiscard]] absl::StatusOr<KeyInfo> ScheduleVersionDestruction(
      const std::string& name, uint32_t version, std::optional<absl::Duration> wait,
      bool force);
  [[nodiscard]] absl::StatusOr<KeyInfo> CancelVersionDestruction(const std::string& name,
                                                                 uint32_t version);

  // Declares `version` compromised, for good (needs compromise-key;
  // audited): it stops wrapping at once — a new version becomes primary
  // when it was the primary — and can never be primary again; its data
  // keys still decrypt so that the data can be re-encrypted, each such
  // decrypt flagged.  Idempotent (a second call changes nothing and says
  // so).  Errors: kInvalidArgument (an empty reason, or over 1024 bytes),
  // kNotFound (key or version), kFailedPrecondition (a destroyed version).
  [[nodiscard]] absl::StatusOr<CompromiseInfo> CompromiseVersion(const std::string& name,
                                                                 uint32_t version,
                                                                 const std::string& reason);
  // The retirement gate's evidence: rows per version of one data set.
  [[nodiscard]] absl::Status ReportDataSet(const DataSetReportInfo& report);
  [[nodiscard]] absl::StatusOr<std::vector<DataSetReportInfo>> ListDataSets(
      const std::string& key_name);
  [[nodiscard]] absl::StatusOr<std::vector<DrillSampleInfo>> GetDrillSamples(
      const std::string& key_name);

  // Erases `tenant` — the value its data keys carry under kTenantContextKey
  // (keyward/keyring.h) — under key `key_name`, inside keywardd: the
  // tenant's key is destroyed, so no data key ever issued for that tenant
  // under that key can be decrypted again by anyone, from any copy of the
  // application's data made before or after, while other tenants are
  // untouched; nor can a new one be made for it (both fail with
  // kFailedPrecondition, ErrorCode kTenantErased).  IRREVERSIBLE.
  // Idempotent: an erased tenant reports state kErased and the first
  // erasure; a tenant never used under the key is erased too (it can then
  // never get a key there).  `options.dry_run`: reports where the tenant
  // stands, changes nothing.  Needs erase-tenant on the key; audited, the
  // tenant only as a keyed hash.  What erasure does not reach (backups of
  // keywardd's key store, other replicas' caches): docs/security.md.
  // Errors: kPermissionDenied (access-denied); kNotFound (no such key);
  // kInvalidArgument (an empty tenant, or over 4096 bytes); kUnavailable
  // (retried like every call) also when the erasure was made but keywardd
  // could not yet scrub its key store's files — call again.
  [[nodiscard]] absl::StatusOr<TenantErasure> EraseTenant(
      const std::string& key_name, const std::string& tenant,
      const EraseTenantOptions& options = {});

  // Access control (needs manage-policy / manage-grants).  SetPolicy errors:
  // kInvalidArgument naming the rule and field; nothing changes.
  [[nodiscard]] absl::StatusOr<std::string> GetPolicy();
  [[nodiscard]] absl::StatusOr<std::string> SetPolicy(const std::string& yaml);
  [[nodiscard]] absl::StatusOr<PolicyDecision> TestPolicy(
      const std::string& principal, const std::string& key_name,
      const std::string& operation, const EncryptionContext& context);
  [[nodiscard]] absl::StatusOr<GrantInfo> CreateGrant(const GrantSpec& spec);
  [[nodiscard]] absl::StatusOr<std::vector<GrantInfo>> ListGrants(bool include_inactive);
  [[nodiscard]] absl::StatusOr<GrantInfo> RevokeGrant(const std::string& id);

  // Break-glass grants.  Request: the caller must be a requester of the
  // policy's breakglass entry for the key.  Approve: an approver of it,
  // never the requester.  Get/List: the requester, its approvers, or a
  // principal with read-audit (List shows only those).  Revoke: the
  // requester, an approver or a principal with manage-grants on the key.
  // Errors: kPermissionDenied (access-denied); kNotFound; kAlreadyExists
  // (approved twice by one principal); kFailedPrecondition (no longer
  // pending / already ended); kInvalidArgument.
  [[nodiscard]] absl::StatusOr<BreakGlassInfo> RequestBreakGlass(const BreakGlassSpec& spec);
  [[nodiscard]] absl::StatusOr<BreakGlassInfo> ApproveBreakGlass(const std::string& id);
  [[nodiscard]] absl::StatusOr<BreakGlassInfo> GetBreakGlass(const std::string& id);
  [[nodiscard]] absl::StatusOr<std::vector<BreakGlassInfo>> ListBreakGlass(bool include_closed);
  [[nodiscard]] absl::StatusOr<BreakGlassInfo> RevokeBreakGlass(const std::string& id);

  // The audit log (needs read-audit).  `fresh` signs a checkpoint now;
  // tree_size 0 means the latest checkpoint's size.
  [[nodiscard]] absl::StatusOr<AuditCheckpointInfo> GetAuditCheckpoint(bool fresh);
  [[nodiscard]] absl::StatusOr<AuditInclusionProof> GetInclusionProof(uint64_t index,
                                                                     uint64_t tree_size);
  [[nodiscard]] absl::StatusOr<AuditConsistencyProof> GetConsistencyProof(
      uint64_t from_size, uint64_t to_size);
  [[nodiscard]] absl::StatusOr<AuditPage> ReadAuditRecords(const AuditQuery& query);
  // The audit directory's segments (needs read-audit).
  [[nodiscard]] absl::StatusOr<AuditSegments> ListAuditSegments();
  // Removes closed, archived segments (needs manage-audit); recorded in the
  // log before and after.  Errors: kFailedPrecondition when a segment to
  // remove was never archived (unless force) or the log is in PostgreSQL;
  // kInvalidArgument without `before`.
  [[nodiscard]] absl::StatusOr<AuditPruneResult> PruneAuditLog(const AuditPruneRequest& request);

 private:
  std::shared_ptr<Connection> connection_;
};

}  // namespace keyward

#endif  // KEYWARD_ADMIN_CLIENT_H_
