// keywardd's configuration file (YAML).  docs/configuration.md documents
// every field; a field that is wrong refuses the start with its path named.
#ifndef KEYWARD_SERVER_CONFIG_H_
#define KEYWARD_SERVER_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hsm/pkcs11_root_of_trust.h"
#include "keystore/key_model.h"
#include "base/log.h"

namespace keyward::server {

struct TlsConfig {
  std::string cert;       // server certificate chain (PEM)
  std::string key;        // its private key (PEM)
  std::string client_ca;  // CA that signs client certificates (PEM)
  // In production, certificates from `keyward dev init` are refused unless
  // this is set (and then a warning is printed at every start).
  bool allow_dev_certificates = false;
};

// docs/security.md explains each limit and what it protects.
struct LimitsConfig {
  int max_request_bytes = 4 << 20;
  // Whole server: requests in keywardd (queued, running, or waiting for
  // their audit record) and the memory they may take.
  int max_concurrent_requests = 1024;
  int max_memory_mib = 512;
  // One principal's share.
  int principal_max_requests = 64;
  int principal_max_memory_mib = 64;
  // Requests running at once (0: one per CPU plus one, at least 3); one
  // principal may run all but one of them.
  int cpu_slots = 0;
  // Refusals before reading (failed TLS handshakes, over-limit requests,
  // unknown methods) recorded one by one per source every 10 seconds; the
  // rest are counted in one summary record.
  int refusals_recorded = 20;
};

struct AuditConfig {
  std::string dir;  // segments/, checkpoints.log (docs/audit.md)
  // Records kept in memory only: accepted solely for environments whose name
  // starts with "bench" (benchmarks compare against it).
  bool in_memory = false;
  // Set by `keywardd --new-audit-log`, never by the file: accept an empty
  // audit directory although the key store's anchor names an older log.
  bool start_new_log = false;
  // Set by `keywardd --adopt-audit-log`: anchor a log the key store holds
  // no anchor for (audit::AuditLogOptions::adopt_log).
  bool adopt_log = false;
  // audit.storage: postgres — records durable in the key store's
  // PostgreSQL database, one log per replica (docs/ha.md).
  bool in_postgres = false;
  absl::Duration checkpoint_interval = absl::Seconds(60);
  // How long a request waits for its record to be durable before failing
  // with UNAVAILABLE.
  absl::Duration max_wait = absl::Seconds(2);
  // Segments of an audit directory close at this size or age.
  int segment_max_mib = 64;
  absl::Duration segment_max_age = absl::Hours(24);
  // audit.retention (audit::AuditLogOptions): archive closed segments to
  // retention_archive_dir, prune archived ones older than retention_keep
  // (unarchived ones too when retention_force).
  absl::Duration retention_keep = absl::ZeroDuration();
  std::string retention_archive_dir;
  bool retention_force = false;
  absl::Duration retention_interval = absl::Minutes(10);
};

struct ServerConfig {
  std::string path;  // where it was read from
  std::string environment;
  std::string listen;       // host:port of the gRPC API (TLS only)
  std::string http_listen = "127.0.0.1:9464";  // health (and metrics)
  std::string sqlite_path;  // storage.sqlite
  // storage.postgres: a libpq URI, perhaps naming several hosts, for
  // several replicas sharing one database (docs/ha.md).  Exclusive with
  // sqlite_path.
  std::string postgres_url;
  // replica.id: this replica's name (required with postgres_url), and how
  // long its claim on the scheduler lease lasts without renewal.
  std::string replica_id;
  absl::Duration lease_ttl = absl::Seconds(10);
  hsm::Pkcs11Options hsm;
  std::string softhsm2_conf;  // hsm.softhsm2_conf (sets SOFTHSM2_CONF)
  bool allow_software_hsm = false;
  TlsConfig tls;
  LimitsConfig limits;
  std::string policy_path;  // policy: FILE (docs/policy.md), reloaded on SIGHUP
  AuditConfig audit;
  keystore::KekProtection default_protection =
      keystore::KekProtection::kWrappedByRoot;
  absl::Duration min_destruction_wait = absl::Hours(24);
  absl::Duration default_destruction_wait = absl::Hours(24 * 30);
  // The retirement gate's quiet period (kms::KeyServiceOptions).
  absl::Duration retirement_quiet_period = absl::Hours(24 * 7);
  // The rotation scheduler (rotation/scheduler.h).
  absl::Duration rotation_check_interval = absl::Seconds(30);
  double usage_rotate_fraction = 0.9;
  // Key names allowed as metric labels (globs); others count as "other".
  std::vector<std::string> metrics_key_labels;
  // Logs on stderr: JSON lines or text, at or above this level.
  bool log_json = false;
  LogLevel log_level = LogLevel::kInfo;
  // Certificates are re-read this often (and on SIGHUP).
  absl::Duration tls_reload_interval = absl::Seconds(2);
};

// Reads and checks a config file.  Relative paths in it are resolved against
// the file's directory.  Errors: kInvalidArgument "FILE: FIELD: what is
// wrong", kNotFound for a missing file.
absl::StatusOr<ServerConfig> LoadServerConfig(const std::string& path);

// Checks that every file the config names exists and is readable (keys and
// PINs not world-readable).  Separate from loading so that tests can build
// configs in memory.
absl::Status CheckConfigFiles(const ServerConfig& config);

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_CONFIG_H_
