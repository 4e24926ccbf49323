// keyward::Client: the SDK's connection to keywardd.
//
// Mutual TLS 1.3 to one or more servers (calls are spread round-robin),
// a deadline on every call, and retries with exponential backoff for
// UNAVAILABLE only (a call that may have changed state is never retried
// for any other reason).  On connect the client asks the server for its
// environment and refuses one that differs from its own configuration.
//
// Thread-safety: a Client is safe for concurrent use; share one per process.
#ifndef KEYWARD_CLIENT_H_
#define KEYWARD_CLIENT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "keyward/keyring.h"
#include "keyward/secret_data.h"

namespace keyward {

struct ClientOptions {
  std::vector<std::string> servers;  // "host:port", at least one
  std::string environment;           // must match the servers'
  std::string ca_file;    // CA that signed the servers' certificates
  std::string cert_file;  // this client's certificate (its principal)
  std::string key_file;   // and private key
  absl::Duration deadline = absl::Seconds(10);  // per attempt
  int max_attempts = 4;                         // UNAVAILABLE only
  absl::Duration initial_backoff = absl::Milliseconds(50);
  // The audit checkpoint signing key's fingerprint (hex SHA-256 of its
  // SubjectPublicKeyInfo), recorded when the deployment was set up: `keyward
  // audit verify` and `audit checkpoint` trust checkpoints signed by it.
  std::string audit_checkpoint_key_fingerprint;
};

// Reads a client config file (YAML: servers, environment, tls.{ca, cert,
// key}, deadline, audit.checkpoint_key_fingerprint).  Relative paths resolve against the file's directory.
// Errors: kNotFound, kInvalidArgument naming the field.
absl::StatusOr<ClientOptions> LoadClientConfig(const std::string& path);

struct ServerInfo {
  std::string environment;
  std::string version;
  std::vector<std::string> suites;
  std::string hsm;
  bool hsm_software = false;
  std::string principal;  // who the server says you are
  // The audit checkpoint signing key's fingerprint, as the server reports
  // it; compare it with the one recorded at setup before pinning it.
  std::string audit_checkpoint_key_fingerprint;
};

struct KeyVersionInfo {
  uint32_t version = 0;
  std::string state;       // enabled | decrypt-only | disabled | pending-destruction | destroyed
  std::string protection;  // wrapped-by-root | hsm-resident
  absl::Time created;
  std::optional<absl::Time> destroy_after;
  std::optional<absl::Time> destroyed;
  uint64_t data_keys_issued = 0;
  uint64_t decrypts = 0;
  std::optional<absl::Time> last_used;
  std::optional<absl::Time> last_decrypt;  // a reader's, not a re-encryption's
};

struct KeyInfo {
  std::string name;
  std::string purpose;
  std::string suite;
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
  std::string protection;  // "" (server default), wrapped-by-root, hsm-resident
  std::string suite;       // "" (default AES-256-GCM-HKDF-SHA256-COMMIT)
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

struct WrappedKeyResult {
  std::string wrapped;
  KeyReference key;
};

struct RewrappedHeader {
  std::string header;
  KeyReference key;
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

struct DrillSampleInfo {
  uint32_t version = 0;
  std::string state;
  std::string message;             // empty: the version predates drills
  std::string expected_plaintext;  // not secret
};

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

class Client {
 public:
  // Connects and checks the server's environment.  Errors: kInvalidArgument
  // (options, unreadable TLS files), kUnavailable (no server answers),
  // kFailedPrecondition with ErrorCode kEnvironmentMismatch.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Client>> Connect(
      const ClientOptions& options);
  ~Client();

  const ClientOptions& options() const { return options_; }

  [[nodiscard]] absl::StatusOr<ServerInfo> GetServerInfo();

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

  // Data keys.
  [[nodiscard]] absl::StatusOr<GeneratedDataKey> GenerateDataKey(
      const std::string& key_name, const EncryptionContext& context);
  [[nodiscard]] absl::StatusOr<WrappedKeyResult> GenerateDataKeyWithoutPlaintext(
      const std::string& key_name, const EncryptionContext& context);
  [[nodiscard]] absl::StatusOr<SecretData> DecryptDataKey(
      const std::string& wrapped, const EncryptionContext& context);
  [[nodiscard]] absl::StatusOr<WrappedKeyResult> ReWrapDataKey(
      const std::string& wrapped, const EncryptionContext& context);
  [[nodiscard]] absl::StatusOr<std::vector<GeneratedDataKey>> GenerateDataKeys(
      const std::string& key_name, const EncryptionContext& context, int count);
  // One result per input, in order.  `for_reencryption`: the caller is
  // re-encrypting the data (audited as such; does not count as a reader
  // for the retirement gate).
  [[nodiscard]] absl::StatusOr<std::vector<absl::StatusOr<SecretData>>> DecryptDataKeys(
      const std::vector<std::pair<std::string, EncryptionContext>>& requests,
      bool for_reencryption = false);

  // Small payloads (at most 64 KiB) encrypted inside keywardd.
  [[nodiscard]] absl::StatusOr<std::string> Encrypt(const std::string& key_name,
                                                    const std::string& plaintext,
                                                    const EncryptionContext& context);
  [[nodiscard]] absl::StatusOr<SecretData> Decrypt(const std::string& message,
                                                   const EncryptionContext& context);
  // Rewraps a message header to its key's primary version inside keywardd.
  [[nodiscard]] absl::StatusOr<RewrappedHeader> RewrapMessageHeader(
      const std::string& header, const EncryptionContext& context);

  // Rotation (docs/rotation.md).  Rewraps message headers (each through its
  // header tag) to their keys' primary versions inside keywardd, each
  // verified to open under the new version; one result per header, in
  // order.  Sent in requests of at most 10,000 headers and 1 MiB, smaller if
  // keywardd's request size limit is lower (a header alone above it gets
  // kLimitExceeded).  An error for the whole call means some headers may
  // have been rewrapped (the results are discarded: the caller's messages
  // are unchanged).
  [[nodiscard]] absl::StatusOr<std::vector<absl::StatusOr<RewrappedHeader>>>
  RewrapMessageHeaders(const std::vector<std::string>& headers);
  // The retirement gate's evidence: rows per version of one data set.
  [[nodiscard]] absl::Status ReportDataSet(const DataSetReportInfo& report);
  [[nodiscard]] absl::StatusOr<std::vector<DataSetReportInfo>> ListDataSets(
      const std::string& key_name);
  [[nodiscard]] absl::StatusOr<std::vector<DrillSampleInfo>> GetDrillSamples(
      const std::string& key_name);

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

  // The audit log (needs read-audit).  `fresh` signs a checkpoint now;
  // tree_size 0 means the latest checkpoint's size.
  [[nodiscard]] absl::StatusOr<AuditCheckpointInfo> GetAuditCheckpoint(bool fresh);
  [[nodiscard]] absl::StatusOr<AuditInclusionProof> GetInclusionProof(uint64_t index,
                                                                     uint64_t tree_size);
  [[nodiscard]] absl::StatusOr<AuditConsistencyProof> GetConsistencyProof(
      uint64_t from_size, uint64_t to_size);
  [[nodiscard]] absl::StatusOr<AuditPage> ReadAuditRecords(const AuditQuery& query);

 private:
  struct Impl;
  explicit Client(ClientOptions options);
  ClientOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keyward

#endif  // KEYWARD_CLIENT_H_
