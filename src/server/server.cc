// Long on purpose: keywardd's start-up wiring, in the order it happens.
#include "server/server.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/conf.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "hsm/pkcs11_root_of_trust.h"
#include "keyward/errors.h"
#include "keyward/version.h"
#include "metrics/metrics.h"
#include "format/wire.h"
#include "audit/postgres_storage.h"
#include "keystore/postgres_key_store.h"
#include "server/handshake_audit.h"
#include "server/replicas.h"
#include "server/unknown_method.h"

namespace keyward::server {
namespace {

// How long /readyz (and the keyward_ready gauge) wait for the HSM and the
// store to answer before saying "not ready".
constexpr absl::Duration kHealthProbeWait = absl::Seconds(2);

// Scrape-time gauges that read keywardd's parts; removed again in ~Server.
constexpr const char* kServerCollectors[] = {
    "keyward_audit_queue_depth",       "keyward_audit_unavailable",
    "keyward_ready",                   "keyward_key_primary_age_seconds",
    "keyward_requests_in_progress",    "keyward_requests_waiting_for_cpu",
    "keyward_saturated",               "keyward_scheduler_lease_held"};

void RegisterCollectors(kms::KeyService* core, audit::AuditLog* audit_log,
                        std::function<absl::Status()> readiness,
                        const FairScheduler* scheduler,
                        const rotation::Scheduler* rotation_scheduler) {
  metrics::Registry& r = metrics::Global();
  metrics::RegisterProcessCollectors(r);
  r.GaugeFamily("keyward_build_info", "Build information (value 1).", {"version"})
      .With({kVersion})
      .Set(1);
  r.SetCollector("keyward_audit_queue_depth",
                 "Audit records accepted but not yet durable.", {}, [audit_log] {
                   return std::vector<metrics::Sample>{
                       {{}, static_cast<double>(audit_log->GetStats().pending)}};
                 });
  r.SetCollector("keyward_audit_unavailable",
                 "1 while the audit log cannot make records durable (requests fail).", {},
                 [audit_log] {
                   return std::vector<metrics::Sample>{
                       {{}, audit_log->Health().ok() ? 0.0 : 1.0}};
                 });
  r.SetCollector("keyward_scheduler_lease_held",
                 "1 while this replica holds the scheduler lease (and runs rotations and "
                 "destructions); always 1 for a single keywardd.",
                 {}, [rotation_scheduler] {
                   return std::vector<metrics::Sample>{
                       {{}, rotation_scheduler->MayActNow() ? 1.0 : 0.0}};
                 });
  r.SetCollector("keyward_ready", "1 when /readyz answers 200.", {}, [readiness] {
    return std::vector<metrics::Sample>{{{}, readiness().ok() ? 1.0 : 0.0}};
  });
  r.SetCollector("keyward_requests_in_progress",
                 "Requests admitted and not yet answered (all principals).", {}, [scheduler] {
                   return std::vector<metrics::Sample>{
                       {{}, static_cast<double>(scheduler->GetStats().requests)}};
                 });
  r.SetCollector("keyward_requests_waiting_for_cpu",
                 "Admitted requests waiting for a CPU slot (fair queuing).", {}, [scheduler] {
                   return std::vector<metrics::Sample>{
                       {{}, static_cast<double>(scheduler->GetStats().queued)}};
                 });
  r.SetCollector("keyward_saturated",
                 "1 while keywardd as a whole refuses work (in the last 5 seconds).", {},
                 [scheduler] {
                   const auto stats = scheduler->GetStats();
                   return std::vector<metrics::Sample>{
                       {{}, absl::Now() - stats.last_server_refusal < absl::Seconds(5) ? 1.0
                                                                                       : 0.0}};
                 });

  r.SetCollector(
      "keyward_key_primary_age_seconds",
      "Age of each key's primary version (keys matching metrics.key_labels only).", {"key"},
      [core] {
        std::vector<metrics::Sample> out;
        const absl::Time now = absl::Now();
        std::string token;
        do {
          auto page = core->ListKeys("", 500, token);
          if (!page.ok()) break;
          for (const keystore::Key& k : page->keys) {
            if (metrics::KeyLabel(k.name) == "other") continue;
            const keystore::KeyVersion* v = k.FindVersion(k.primary_version);
            if (v != nullptr) out.push_back({{k.name}, absl::ToDoubleSeconds(now - v->created)});
          }
          token = page->next_page_token;
        } while (!token.empty());
        return out;
      });
}

constexpr char kTls13Config[] = R"(
openssl_conf = keywardd_init
[keywardd_init]
ssl_conf = keywardd_ssl
[keywardd_ssl]
system_default = keywardd_tls
[keywardd_tls]
MinProtocol = TLSv1.3
Protocol = -ALL, TLSv1.3
)";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A certificate chain and key that parse and belong together.
absl::Status CheckKeyPair(const TlsConfig& tls, const std::string& environment,
                          bool allow_dev_certificates) {
  const std::string cert_pem = ReadFile(tls.cert);
  const std::string key_pem = ReadFile(tls.key);
  std::unique_ptr<BIO, decltype(&BIO_free)> cb(
      BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())), BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr), X509_free);
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls.cert: ", tls.cert, " holds no PEM certificate"));
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> kb(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())), BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls.key: ", tls.key, " holds no PEM private key"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls.key: ", tls.key, " does not belong to the certificate in ", tls.cert));
  }
  // Certificates made by `keyward dev init` say so in their issuer.
  char issuer[512];
  X509_NAME_oneline(X509_get_issuer_name(cert.get()), issuer, sizeof(issuer));
  if (environment == "production" && std::string(issuer).find("Keyward dev CA") != std::string::npos) {
    if (!allow_dev_certificates) {
      return absl::FailedPreconditionError(absl::StrCat(
          "tls.cert: ", tls.cert, " is a development certificate (issued by \"",
          issuer, "\") and environment 'production' refuses it; use your "
          "PKI's certificate, or set tls.allow_dev_certificates: true to accept "
          "the risk explicitly"));
    }
    Log(LogLevel::kWarning, "tls",
        "production is using a DEVELOPMENT certificate because tls.allow_dev_certificates is set");
  }
  const std::string ca = ReadFile(tls.client_ca);
  if (ca.find("BEGIN CERTIFICATE") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls.client_ca: ", tls.client_ca, " holds no PEM certificate"));
  }
  return absl::OkStatus();
}

// The key that hashes encryption context values in audit records: random,
// stored only sealed by the root key, the same across restarts so that
// records stay comparable.
absl::StatusOr<SecretData> AuditHmacKey(const std::string& environment,
                                       keystore::KeyStore& store, hsm::RootOfTrust& root) {
  constexpr char kName[] = "audit-hmac-key";
  const std::string aad = absl::StrCat("keyward audit hmac v1|", environment);
  for (int attempt = 0; attempt < 2; ++attempt) {
    KW_ASSIGN_OR_RETURN(std::optional<std::string> sealed,
                        store.GetSealedSecret(kName));
    if (sealed) return root.Unseal(*sealed, aad);
    KW_ASSIGN_OR_RETURN(SecretData fresh, root.GenerateRandom(32));
    KW_ASSIGN_OR_RETURN(std::string new_sealed, root.Seal(fresh, aad));
    absl::Status put = store.PutSealedSecret(kName, new_sealed);
    if (put.ok()) return fresh;
    if (put.code() != absl::StatusCode::kAlreadyExists) return put;
    // Another keywardd made it first: use theirs.
  }
  return absl::InternalError("cannot settle the audit HMAC key");
}

// The audit log's latest checkpoint (size and root), sealed by the HSM root
// key in the key store: whoever can rewrite the audit directory (or the
// audit tables) cannot forge it, so keywardd notices a rewritten log at its
// next start.  One anchor per log: a replica's is named after it.
class SealedCheckpointAnchor final : public audit::CheckpointAnchor {
 public:
  SealedCheckpointAnchor(const std::string& environment, const std::string& log_id,
                         keystore::KeyStore* store, hsm::RootOfTrust* root)
      : value_(store, root,
               log_id.empty() ? std::string(kName) : absl::StrCat(kName, "/", log_id),
               log_id.empty() ? absl::StrCat("keyward audit anchor v1|", environment)
                              : absl::StrCat("keyward audit anchor v1|", environment, "|",
                                             log_id)) {}
  absl::StatusOr<std::optional<Anchor>> Load() override {
    KW_ASSIGN_OR_RETURN(std::optional<std::string> plain, value_.Load());
    if (!plain) return std::optional<Anchor>();
    if (plain->size() != 8 + 32) {
      return absl::DataLossError("the sealed audit checkpoint in the key store is malformed");
    }
    Anchor a;
    a.tree_size = format::LoadBigEndian(absl::string_view(*plain).substr(0, 8));
    std::memcpy(a.root.data(), plain->data() + 8, 32);
    return std::optional<Anchor>(a);
  }
  absl::Status Store(const Anchor& a) override {
    std::string plain;
    format::AppendBigEndian(&plain, a.tree_size, 8);
    plain.append(reinterpret_cast<const char*>(a.root.data()), a.root.size());
    return value_.Store(plain);
  }

 private:
  static constexpr char kName[] = "audit-checkpoint-anchor";
  const SealedValue value_;
};

}  // namespace

absl::Status EnforceTls13Only() {
  // The configuration is handed to OpenSSL through an anonymous in-memory
  // file, so no file on disk can be swapped to weaken it.  It is loaded with
  // CONF_modules_load_file, which applies even when a library (cpp-httplib,
  // at load time) has initialized OpenSSL's TLS library already.
  int fd = ::memfd_create("keywardd-openssl.cnf", MFD_CLOEXEC);
  if (fd < 0 || ::write(fd, kTls13Config, sizeof(kTls13Config) - 1) !=
                    static_cast<ssize_t>(sizeof(kTls13Config) - 1)) {
    if (fd >= 0) ::close(fd);
    return absl::InternalError("cannot prepare the TLS 1.3 configuration");
  }
  const std::string path = absl::StrCat("/proc/self/fd/", fd);
  OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, nullptr);
  const int ok = CONF_modules_load_file(path.c_str(), nullptr, 0);
  ::close(fd);
  if (ok <= 0) {
    return absl::InternalError("OpenSSL refused the TLS 1.3 configuration");
  }
  // Fail closed: a TLS context made now must refuse anything below 1.3.
  SSL_CTX* probe = SSL_CTX_new(TLS_server_method());
  const long min_version = probe == nullptr ? 0 : SSL_CTX_get_min_proto_version(probe);
  SSL_CTX_free(probe);
  if (min_version != TLS1_3_VERSION) {
    return absl::InternalError(
        "OpenSSL did not apply the TLS 1.3 minimum (keywardd will not serve older TLS)");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerConfig& config) {
  KW_RETURN_IF_ERROR(CheckConfigFiles(config));
  KW_RETURN_IF_ERROR(CheckKeyPair(config.tls, config.environment,
                                  config.tls.allow_dev_certificates));
  if (!config.softhsm2_conf.empty()) {
    ::setenv("SOFTHSM2_CONF", config.softhsm2_conf.c_str(), 1);
  }
  ServerParts parts;
  KW_ASSIGN_OR_RETURN(parts.store, OpenKeyStore(config));
  KW_ASSIGN_OR_RETURN(parts.root, hsm::OpenPkcs11(config.hsm));
  return Start(config, std::move(parts));
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerConfig& config,
                                                      ServerParts parts) {
  if (parts.store == nullptr || parts.root == nullptr) {
    return absl::InvalidArgumentError("keywardd needs a key store and a root of trust");
  }
  KW_RETURN_IF_ERROR(CheckConfigFiles(config));
  std::unique_ptr<Server> server(new Server());
  server->config_ = config;
  server->store_ = std::move(parts.store);
  server->root_ = std::move(parts.root);
  metrics::SetKeyLabelGlobs(config.metrics_key_labels);
  kms::KeyServiceOptions options;
  options.environment = config.environment;
  options.default_protection = config.default_protection;
  options.min_destruction_wait = config.min_destruction_wait;
  options.default_destruction_wait = config.default_destruction_wait;
  options.allow_software_hsm = config.allow_software_hsm;
  options.retirement_quiet_period = config.retirement_quiet_period;
  KW_ASSIGN_OR_RETURN(server->core_,
                      kms::KeyService::Create(options, server->store_, server->root_));
  const bool replicated = !config.postgres_url.empty();
  KW_ASSIGN_OR_RETURN(
      server->access_,
      AccessControl::Open(config.policy_path, server->store_.get(),
                          replicated ? std::optional<SharedPolicy>(MakeSharedPolicy(
                                           config.environment, server->store_.get(),
                                           server->root_.get()))
                                     : std::nullopt));
  if (replicated) {
    // From here on, what another replica changes reaches this one's caches.
    server->changes_ =
        std::make_shared<ChangeRouter>(server->core_.get(), server->access_.get());
    std::weak_ptr<ChangeRouter> router = server->changes_;
    KW_RETURN_IF_ERROR(server->store_->Watch([router](const keystore::StoreChange& c) {
      if (auto r = router.lock()) r->Deliver(c);
    }));
    // What another replica changed between our first reads and LISTEN.
    server->changes_->Deliver(keystore::StoreChange{});  // kEverything
  }
  KW_ASSIGN_OR_RETURN(SecretData hmac_key,
                      AuditHmacKey(config.environment, *server->store_, *server->root_));
  KW_ASSIGN_OR_RETURN(server->context_hmac_, crypto::HmacSha256::New(hmac_key, 16));
  audit::AuditLogOptions audit_options;
  audit_options.dir = config.audit.in_memory ? "" : config.audit.dir;
  audit_options.environment = config.environment;
  audit_options.max_wait = config.audit.max_wait;
  audit_options.checkpoint_interval = config.audit.checkpoint_interval;
  audit_options.segments.max_bytes = uint64_t(config.audit.segment_max_mib) << 20;
  audit_options.segments.max_age = config.audit.segment_max_age;
  audit_options.retention_keep = config.audit.retention_keep;
  audit_options.retention_archive_dir = config.audit.retention_archive_dir;
  audit_options.retention_force = config.audit.retention_force;
  audit_options.retention_interval = config.audit.retention_interval;
  audit_options.signer = server->root_.get();
  audit_options.signing_key_label = absl::StrCat("keyward-audit/", config.environment);
  if (!config.audit.in_memory) {
    server->audit_anchor_ = std::make_unique<SealedCheckpointAnchor>(
        config.environment, config.audit.in_postgres ? config.replica_id : "",
        server->store_.get(), server->root_.get());
    audit_options.anchor = server->audit_anchor_.get();
  }
  if (config.audit.in_postgres) {
    // One log per replica, named after it, in the key store's database.
    KW_ASSIGN_OR_RETURN(std::string audit_url,
                        keystore::WithReplicaConnectionDefaults(
                            config.postgres_url, absl::Seconds(5), "keywardd-audit"));
    KW_ASSIGN_OR_RETURN(audit_options.storage,
                        audit::OpenPostgresAuditStorage(audit::PostgresAuditOptions{
                            .url = audit_url,
                            .log_id = config.replica_id,
                            .environment = config.environment}));
  }
  audit_options.allow_new_log = config.audit.start_new_log;
  audit_options.adopt_log = config.audit.adopt_log;
  KW_ASSIGN_OR_RETURN(server->audit_, audit::AuditLog::Open(audit_options));
  {
    // Each start is on the record, with the policy it starts with: a policy
    // edited while keywardd was stopped shows here.
    audit::AuditRecord r;
    r.time = absl::Now();
    r.request_id = "start";
    r.principal = "keywardd";
    r.operation = "start";
    r.decision = "none";
    r.result = "OK";
    r.detail = absl::StrCat("keywardd ", kVersion, " started in environment ",
                            config.environment, "; policy ", config.policy_path, " ",
                            server->access_->PolicyDigest());
    if (const auto& old = server->audit_->replaced_anchor()) {
      absl::StrAppend(&r.detail, "; NEW audit log started on request (--new-audit-log): the "
                                 "previous log, anchored at ",
                      old->tree_size, " records with root ", audit::ToHex(old->root),
                      ", is not in ", config.audit.dir);
    }
    if (const auto adopted = server->audit_->adopted_records()) {
      absl::StrAppend(&r.detail, "; audit log of ", *adopted,
                      " records adopted without an anchor on request (--adopt-audit-log)");
    }
    KW_RETURN_IF_ERROR(server->audit_->Append(std::move(r)));
  }
  if (config.audit.in_postgres) {
    // A replica's log is sealed from its first start, and what it
    // acknowledged before a crash as soon as it is back.
    KW_RETURN_IF_ERROR(server->audit_->MakeCheckpoint().status());
  }

  ServiceDeps deps;
  deps.core = server->core_.get();
  deps.access = server->access_.get();
  deps.audit = server->audit_.get();
  deps.context_hmac = server->context_hmac_.get();
  deps.scheduling.cpu_slots = config.limits.cpu_slots;
  deps.scheduling.max_requests = config.limits.max_concurrent_requests;
  deps.scheduling.max_cost = int64_t{config.limits.max_memory_mib} << 20;
  deps.scheduling.principal_max_requests = config.limits.principal_max_requests;
  deps.scheduling.principal_max_cost = int64_t{config.limits.principal_max_memory_mib} << 20;
  deps.refusals.burst = config.limits.refusals_recorded;
  deps.max_request_bytes = static_cast<size_t>(config.limits.max_request_bytes);
  deps.checkpoint_key_fingerprint = server->audit_->key_fingerprint();
  server->service_ = std::make_unique<KeyManagementService>(deps);
  server->unknown_methods_ = std::make_unique<UnknownMethodService>(server->service_.get());
  InstallHandshakeAuditHook(server->service_.get());

  // The scheduler's actions are audited like requests, as keywardd itself.
  audit::AuditLog* log = server->audit_.get();
  rotation::SchedulerOptions scheduler_options;
  scheduler_options.interval = config.rotation_check_interval;
  scheduler_options.usage_fraction = config.usage_rotate_fraction;
  if (replicated) {
    scheduler_options.lease_store = server->store_.get();
    scheduler_options.holder = config.replica_id;
    scheduler_options.lease_ttl = config.lease_ttl;
  }
  server->scheduler_ = std::make_unique<rotation::Scheduler>(
      server->core_.get(), kms::Clock::Real(), options.max_data_keys_per_version,
      scheduler_options, [log](const rotation::Action& a) {
        audit::AuditRecord r;
        r.time = absl::Now();
        r.request_id = "scheduler";
        r.principal = "keywardd:scheduler";
        r.operation = a.kind == rotation::Action::Kind::kRotate ? "rotate-key" : "destroy-version";
        r.key = a.key;
        r.version = a.to_version;
        r.decision = "none";
        r.rule = "scheduler";
        r.result = absl::StatusCodeToString(a.status.code());
        r.detail = a.status.ok() ? a.reason
                                 : absl::StrCat(a.reason, ": ", a.status.message());
        if (a.fencing_token != 0) {
          absl::StrAppend(&r.detail, " (scheduler lease, fencing token ", a.fencing_token, ")");
        }
        static auto& actions = metrics::Global().CounterFamily(
            "keyward_scheduler_actions_total",
            "Rotation scheduler actions (rotate, destroy) by result.", {"action", "result"});
        const char* action = a.kind == rotation::Action::Kind::kRotate ? "rotate" : "destroy";
        actions.With({action, a.status.ok() ? "ok" : "error"}).Inc();
        if (absl::Status s = log->Append(std::move(r)); !s.ok()) {
          Log(LogLevel::kError, "scheduler", "could not audit a scheduled action",
              {{"action", action}, {"key", a.key}, {"error", std::string(s.message())}});
        }
        Log(a.status.ok() ? LogLevel::kInfo : LogLevel::kError, "scheduler", a.reason,
            {{"action", action},
             {"key", a.key},
             {"version", absl::StrCat(a.to_version)},
             {"result", absl::StatusCodeToString(a.status.code())},
             {"error", std::string(a.status.message())}});
      });

  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      config.tls.key, config.tls.cert, config.tls.client_ca,
      static_cast<unsigned int>(
          std::max<int64_t>(1, absl::ToInt64Seconds(config.tls_reload_interval))));
  grpc::experimental::TlsServerCredentialsOptions tls(provider);
  tls.watch_root_certs();
  tls.watch_identity_key_cert_pairs();
  tls.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);

  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen, grpc::experimental::TlsServerCredentials(tls),
                           &server->port_);
  // No SO_REUSEPORT (gRPC's default): another process could then bind the
  // same port and be handed some of keywardd's connections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(server->service_.get());
  builder.RegisterCallbackGenericService(server->unknown_methods_.get());
  // keywardd checks limits.max_request_bytes itself, so that a refusal is
  // audited; gRPC stops anything larger still before buffering it.
  builder.SetMaxReceiveMessageSize(config.limits.max_request_bytes * 2);
  builder.SetMaxSendMessageSize(64 << 20);
  // Streams per connection: more concurrent calls than this on one
  // connection wait in the client, not in keywardd's memory.  One
  // principal may not have more requests in keywardd anyway.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             std::max(1, config.limits.principal_max_requests));
  // (A grpc::ResourceQuota of limits.max_memory_mib was tried: under a
  // flood of 160 concurrent 3.5 MB requests it did not lower keywardd's
  // peak memory, measured; docs/security.md.)
  server->grpc_ = builder.BuildAndStart();
  if (server->grpc_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", config.listen,
        " (address in use, or not an address of this machine)"));
  }

  kms::KeyService* core = server->core_.get();
  audit::AuditLog* audit_log = server->audit_.get();
  const FairScheduler* scheduler = &server->service_->scheduler();
  // The HSM and the store are asked on the probe's thread: a hung HSM makes
  // keywardd not ready within two seconds instead of hanging /readyz and
  // /metrics with it.
  server->dependencies_probe_ = std::make_unique<HealthProbe>(
      [store = server->store_.get(), root = server->root_.get()]() -> absl::Status {
        if (absl::Status s = root->CheckHealth(); !s.ok()) {
          return absl::UnavailableError(absl::StrCat("HSM: ", s.message()));
        }
        if (auto n = store->CountKeys(); !n.ok()) {
          return absl::UnavailableError(absl::StrCat("key store: ", n.status().message()));
        }
        return absl::OkStatus();
      },
      kHealthProbeWait);
  HealthProbe* probe = server->dependencies_probe_.get();
  auto readiness = [audit_log, scheduler, probe]() -> absl::Status {
    if (absl::Status s = audit_log->Health(); !s.ok()) return s;
    // Saturated: keywardd as a whole refused work in the last 5 seconds.
    // (One principal over its own share is not saturation; it shows in
    // keyward_requests_refused_before_reading_total.)
    const FairScheduler::Stats stats = scheduler->GetStats();
    if (absl::Now() - stats.last_server_refusal < absl::Seconds(5)) {
      return absl::UnavailableError(absl::StrCat(
          "saturated: ", stats.requests, " requests in progress, ", stats.queued,
          " waiting for a CPU slot; requests are being refused (limits.max_concurrent_requests, "
          "limits.max_memory_mib)"));
    }
    return probe->Check();
  };
  RegisterCollectors(core, audit_log, readiness, scheduler, server->scheduler_.get());
  std::map<std::string, HttpHandler> routes;
  routes["/healthz"] = [] { return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"}; };
  routes["/readyz"] = [readiness] {
    if (absl::Status s = readiness(); !s.ok()) {
      return HttpResponse{503, "text/plain; charset=utf-8",
                          absl::StrCat("not ready: ", s.message(), "\n")};
    }
    return HttpResponse{200, "text/plain; charset=utf-8", "ready\n"};
  };
  routes["/metrics"] = [] {
    return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                        metrics::Global().Render()};
  };
  KW_ASSIGN_OR_RETURN(server->http_, HttpServer::Start(config.http_listen, std::move(routes)));
  server->scheduler_->Start();
  return server;
}

absl::Status Server::ReloadPolicy() {
  // The record is written (durably) before the new policy takes effect; if
  // it cannot be, the reload is abandoned and the old policy stays.
  auto change = access_->ReloadPolicy([this](const PolicyChange& c) {
    audit::AuditRecord r;
    r.time = absl::Now();
    r.request_id = "sighup";
    r.principal = "keywardd:sighup";
    r.operation = "manage-policy";
    r.key = "*";
    r.decision = "none";
    r.rule = "sighup";
    r.result = "OK";
    r.detail = absl::StrCat("policy reloaded from ", config_.policy_path, ": ", c.old_digest,
                            " -> ", c.new_digest);
    return audit_->Append(std::move(r));
  });
  if (!change.ok() && GetErrorCode(change.status()) != ErrorCode::kAuditUnavailable) {
    audit::AuditRecord r;
    r.time = absl::Now();
    r.request_id = "sighup";
    r.principal = "keywardd:sighup";
    r.operation = "manage-policy";
    r.key = "*";
    r.decision = "none";
    r.rule = "sighup";
    r.result = absl::StatusCodeToString(change.status().code());
    r.detail = absl::StrCat("policy NOT reloaded from ", config_.policy_path, ": ",
                            change.status().message().substr(0, 300));
    (void)audit_->Append(std::move(r));
  }
  return change.status();
}

absl::Status Server::ReloadCertificates() {
  KW_RETURN_IF_ERROR(CheckConfigFiles(config_));
  return CheckKeyPair(config_.tls, config_.environment,
                      config_.tls.allow_dev_certificates);
}

void Server::Shutdown(absl::Duration grace) {
  if (scheduler_) scheduler_->Stop();
  if (grpc_ && !shut_down_) {
    shut_down_ = true;
    // gRPC's graceful GOAWAY waits for each connected client to answer a
    // ping (a few seconds for idle ones); calls in flight get `grace`.
    grpc_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoMilliseconds(grace));
    grpc_->Wait();
  }
  http_.reset();
  if (core_) (void)core_->FlushUsage();
}

Server::~Server() {
  Shutdown(absl::Seconds(5));  // stops the HTTP listener: no scrape runs after this
  for (const char* name : kServerCollectors) metrics::Global().RemoveCollector(name);
  grpc_.reset();
  InstallHandshakeAuditHook(nullptr);
  unknown_methods_.reset();
  service_.reset();
  audit_.reset();  // drains and writes the final checkpoint (needs the HSM)
  audit_anchor_.reset();
  if (changes_) changes_->Detach();  // the store's watcher may still deliver
  access_.reset();
  core_.reset();  // closes the HSM session
}

}  // namespace keyward::server
