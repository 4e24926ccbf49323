// keywardd: options from a config file → Server::Start() → serve until
// Shutdown().  Owns the KMS core, the gRPC server (mutual TLS 1.3 only) and
// the loopback HTTP listener for health.
#ifndef KEYWARD_SERVER_SERVER_H_
#define KEYWARD_SERVER_SERVER_H_

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audit/audit_log.h"
#include "crypto/hmac.h"
#include "kms/key_service.h"
#include "rotation/scheduler.h"
#include "server/access_control.h"
#include "server/config.h"
#include "server/health_probe.h"
#include "server/http_server.h"
#include "server/key_management_service.h"
#include "server/replicas.h"
#include "server/unknown_method.h"

namespace keyward::server {

// Makes every TLS context of this process refuse anything below TLS 1.3.
// gRPC 1.51 has no option for it, so this loads an OpenSSL configuration
// whose system defaults disable older protocols.  Must run before anything
// initializes OpenSSL's TLS library (first thing in main).
absl::Status EnforceTls13Only();

// What keywardd is built on, given to it at construction: the core and
// the parts beside it (access control, the audit log's anchor and signing
// key) share them.
struct ServerParts {
  std::shared_ptr<keystore::KeyStore> store;
  std::shared_ptr<hsm::RootOfTrust> root;
};

class Server {
 public:
  // Opens the store and the HSM the config names, checks the environment's
  // rules, and starts listening.  Errors name what is missing or wrong.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerConfig& config);
  // The same on a store and root of trust the caller opened (tests inject
  // fakes here); config.sqlite_path and config.hsm are then not used.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerConfig& config,
                                                       ServerParts parts);
  ~Server();

  int port() const { return port_; }
  int http_port() const { return http_->port(); }
  kms::KeyService& core() { return *core_; }

  audit::AuditLog& audit() { return *audit_; }
  AccessControl& access() { return *access_; }

  // Re-reads the policy file and records the change (old and new digests)
  // in the audit log before it takes effect; on error the policy in force
  // stays, and the failed attempt is recorded too.
  absl::Status ReloadPolicy();

  // Re-reads the certificate files (they are also watched, every
  // tls.reload_interval); an invalid set is reported and the old one kept.
  absl::Status ReloadCertificates();

  // Stops accepting calls, lets in-flight ones finish (up to `grace`), then
  // flushes counters, writes a final audit checkpoint and closes the HSM
  // session.
  void Shutdown(absl::Duration grace);

 private:
  Server() = default;

  ServerConfig config_;
  std::shared_ptr<keystore::KeyStore> store_;
  std::shared_ptr<hsm::RootOfTrust> root_;
  std::unique_ptr<kms::KeyService> core_;
  std::unique_ptr<AccessControl> access_;
  std::shared_ptr<ChangeRouter> changes_;  // with storage.postgres
  std::unique_ptr<crypto::HmacSha256> context_hmac_;
  std::unique_ptr<audit::CheckpointAnchor> audit_anchor_;  // outlives audit_
  std::unique_ptr<audit::AuditLog> audit_;
  std::unique_ptr<KeyManagementService> service_;
  std::unique_ptr<UnknownMethodService> unknown_methods_;
  std::unique_ptr<rotation::Scheduler> scheduler_;
  std::unique_ptr<grpc::Server> grpc_;
  std::unique_ptr<HealthProbe> dependencies_probe_;  // before http_: outlives it
  std::unique_ptr<HttpServer> http_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_SERVER_H_
