// keyward::Connection: the SDK's mutual TLS 1.3 connection to keywardd,
// shared by the role clients built on it (keyward/data_client.h for
// applications, keyward/admin_client.h for tools).
//
// Calls are spread round-robin over the configured servers (keywardd
// replicas), each attempt with a deadline.  A server whose call fails at
// the transport (UNAVAILABLE, DEADLINE_EXCEEDED) or that reports its key
// store or audit log unavailable is ejected: skipped for ejection_time,
// doubling with each further failure up to max_ejection_time, and back in
// rotation at its first success.  When every server is ejected, the one
// ejected longest ago is tried.
//
// Which calls are retried on another server depends on the operation
// (docs/sdk.md, "Replicas and retries"): reads and calls whose result is
// fresh each time (data keys, Encrypt, Decrypt) are retried, with jittered
// exponential backoff once every server is ejected, up to max_attempts;
// calls that change state (CreateKey, RotateKey, grants, policy, tenant
// erasure, ...) are sent again only when the connection to a server could
// not be made, which proves the request never left.  A state-changing call
// that failed after it was sent returns kUnknown with ErrorCode
// kMayHaveBeenApplied and the command that shows whether it was; when
// keywardd itself answered (its HSM unavailable, say), its answer as is
// (audit-unavailable with the same caveat).  Calls that
// fail on every attempt return kUnavailable naming the servers tried: safe
// to retry later.
//
// On open the connection asks a server for its environment and refuses
// one that differs from its own configuration.
//
// Thread-safety: a Connection is safe for concurrent use; open one per
// process and share it (it is held by shared_ptr, so it lives as long as
// the last client that uses it).
#ifndef KEYWARD_CONNECTION_H_
#define KEYWARD_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace keyward {

struct ClientOptions {
  std::vector<std::string> servers;  // "host:port", at least one
  std::string environment;           // must match the servers'
  std::string ca_file;    // CA that signed the servers' certificates
  std::string cert_file;  // this client's certificate (its principal)
  std::string key_file;   // and private key
  absl::Duration deadline = absl::Seconds(10);  // per attempt
  int max_attempts = 4;  // per call, over all servers (see above)
  absl::Duration initial_backoff = absl::Milliseconds(50);
  // How long a failing server is skipped: ejection_time, doubling with
  // each failure in a row, at most max_ejection_time.
  absl::Duration ejection_time = absl::Seconds(1);
  absl::Duration max_ejection_time = absl::Seconds(30);
  // The audit checkpoint signing key's fingerprint (hex SHA-256 of its
  // SubjectPublicKeyInfo), recorded when the deployment was set up: `keyward
  // audit verify` and `audit checkpoint` trust checkpoints signed by it.
  std::string audit_checkpoint_key_fingerprint;
};

// Reads a client config file (YAML: servers, environment, tls.{ca, cert,
// key}, deadline, audit.checkpoint_key_fingerprint).  Relative paths
// resolve against the file's directory.  Errors: kNotFound,
// kInvalidArgument naming the field.
[[nodiscard]] absl::StatusOr<ClientOptions> LoadClientConfig(const std::string& path);

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
  // The server's clock when it answered (absent from servers before it was
  // reported), for clock skew checks (`keyward doctor`).
  std::optional<absl::Time> server_time;
  // Only from GetServerInfo(true): "ok", or why keywardd's HSM or key store
  // is not usable now.
  std::string health;
};

// One server's record on a connection, for monitoring and tests.
struct EndpointStats {
  std::string address;
  uint64_t attempts = 0;   // requests sent or tried (connections attempted) there
  uint64_t failures = 0;   // attempts that failed at the transport or as unavailable
  uint64_t ejections = 0;  // times it was taken out of rotation
  bool ejected = false;    // out of rotation now
};

class Connection {
 public:
  // Connects and checks the server's environment.  Errors: kInvalidArgument
  // (options, unreadable TLS files), kUnavailable (no server answers),
  // kFailedPrecondition with ErrorCode kEnvironmentMismatch.
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<Connection>> Open(
      const ClientOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const ClientOptions& options() const { return options_; }
  // `check_health`: keywardd also checks its HSM and key store now and
  // reports it in ServerInfo::health (`keyward doctor`).
  [[nodiscard]] absl::StatusOr<ServerInfo> GetServerInfo(bool check_health = false);
  // Each configured server's counters, in the order of options().servers.
  std::vector<EndpointStats> Endpoints() const;

  // The SDK's own access to the channel (src/sdk); not for applications.
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  explicit Connection(ClientOptions options);
  const ClientOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keyward

#endif  // KEYWARD_CONNECTION_H_
