#include "server/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/duration.h"
#include "base/status_macros.h"
#include "format/header.h"
#include "yaml-cpp/yaml.h"

namespace keyward::server {
namespace {

class Reader {
 public:
  Reader(std::string file, std::string dir) : file_(std::move(file)), dir_(std::move(dir)) {}

  absl::Status Error(absl::string_view field, absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(file_, ": ", field, ": ", what));
  }

  // A scalar string, or `fallback` when absent.
  absl::StatusOr<std::string> String(const YAML::Node& parent,
                                     absl::string_view key,
                                     absl::string_view field, bool required,
                                     std::string fallback = "") {
    const YAML::Node n = parent[std::string(key)];
    if (!n) {
      if (required) return Error(field, "is required");
      return fallback;
    }
    if (!n.IsScalar()) return Error(field, "must be a string");
    return n.as<std::string>();
  }

  absl::StatusOr<std::string> Path(const YAML::Node& parent,
                                   absl::string_view key,
                                   absl::string_view field, bool required) {
    KW_ASSIGN_OR_RETURN(std::string p, String(parent, key, field, required));
    if (!p.empty() && p[0] != '/') p = absl::StrCat(dir_, "/", p);
    return p;
  }

  absl::StatusOr<bool> Bool(const YAML::Node& parent, absl::string_view key,
                            absl::string_view field, bool fallback) {
    const YAML::Node n = parent[std::string(key)];
    if (!n) return fallback;
    if (!n.IsScalar()) return Error(field, "must be true or false");
    const std::string v = n.as<std::string>();
    if (v == "true") return true;
    if (v == "false") return false;
    return Error(field, absl::StrCat("must be true or false, not '", v, "'"));
  }

  absl::StatusOr<int> Int(const YAML::Node& parent, absl::string_view key,
                          absl::string_view field, int fallback, int min,
                          int max) {
    const YAML::Node n = parent[std::string(key)];
    if (!n) return fallback;
    int v = 0;
    if (!n.IsScalar() || !absl::SimpleAtoi(n.as<std::string>(), &v)) {
      return Error(field, "must be a whole number");
    }
    if (v < min || v > max) {
      return Error(field, absl::StrCat("must be between ", min, " and ", max));
    }
    return v;
  }

  absl::StatusOr<absl::Duration> Duration(const YAML::Node& parent,
                                          absl::string_view key,
                                          absl::string_view field,
                                          absl::Duration fallback) {
    const YAML::Node n = parent[std::string(key)];
    if (!n) return fallback;
    if (!n.IsScalar()) return Error(field, "must be a duration such as 24h");
    auto d = ParseHumanDuration(n.as<std::string>());
    if (!d.ok()) return Error(field, d.status().message());
    return *d;
  }

  // Unknown keys are errors: a typo must not silently fall back to a
  // default (say, `alow_software_hsm`).
  absl::Status OnlyKeys(const YAML::Node& node, absl::string_view where,
                        std::set<std::string> allowed) {
    if (!node) return absl::OkStatus();
    if (!node.IsMap()) return Error(where, "must be a mapping");
    for (const auto& kv : node) {
      const std::string k = kv.first.as<std::string>();
      if (!allowed.count(k)) {
        return Error(where.empty() ? k : absl::StrCat(where, ".", k),
                     "is not a known setting (see docs/configuration.md)");
      }
    }
    return absl::OkStatus();
  }

 private:
  std::string file_, dir_;
};

absl::Status CheckHostPort(const Reader& r, absl::string_view field,
                           absl::string_view value) {
  const size_t colon = value.rfind(':');
  int port = 0;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(value.substr(colon + 1), &port) || port < 1 ||
      port > 65535) {
    return r.Error(field, absl::StrCat("'", value, "' is not HOST:PORT"));
  }
  return absl::OkStatus();
}

absl::Status CheckReadable(absl::string_view field, const std::string& path,
                           bool secret) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || ::access(path.c_str(), R_OK) != 0) {
    return absl::NotFoundError(
        absl::StrCat(field, ": cannot read ", path));
  }
  if (secret && (st.st_mode & 077) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        field, ": ", path, " is readable by other users; run: chmod 600 ",
        path));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ServerConfig> LoadServerConfig(const std::string& path) {
  if (::access(path.c_str(), R_OK) != 0) {
    return absl::NotFoundError(absl::StrCat(
        "cannot read the config file ", path,
        " (create one with `keyward dev init DIR`, or see "
        "docs/configuration.md)"));
  }
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not valid YAML: ", e.what()));
  }
  std::string dir = path.substr(0, path.find_last_of('/') == std::string::npos
                                       ? 0
                                       : path.find_last_of('/'));
  if (dir.empty()) dir = ".";
  Reader r(path, dir);
  ServerConfig c;
  c.path = path;
  KW_RETURN_IF_ERROR(r.OnlyKeys(root, "", {"environment", "listen", "http_listen",
                                           "storage", "hsm", "tls", "limits",
                                           "keys", "policy", "audit", "rotation",
                                           "metrics", "log", "replica"}));
  KW_ASSIGN_OR_RETURN(c.environment, r.String(root, "environment", "environment", true));
  if (!format::ValidateEnvironment(c.environment).ok()) {
    return r.Error("environment", "must be 1-32 characters of a-z, 0-9 and '-'");
  }
  KW_ASSIGN_OR_RETURN(c.listen, r.String(root, "listen", "listen", true));
  KW_RETURN_IF_ERROR(CheckHostPort(r, "listen", c.listen));
  KW_ASSIGN_OR_RETURN(c.http_listen,
                      r.String(root, "http_listen", "http_listen", false, c.http_listen));
  KW_RETURN_IF_ERROR(CheckHostPort(r, "http_listen", c.http_listen));

  const YAML::Node storage = root["storage"];
  if (!storage) {
    return r.Error("storage", "is required (storage.sqlite: PATH, or storage.postgres: URL "
                              "for several replicas, docs/ha.md)");
  }
  KW_RETURN_IF_ERROR(r.OnlyKeys(storage, "storage", {"sqlite", "postgres"}));
  KW_ASSIGN_OR_RETURN(c.postgres_url, r.String(storage, "postgres", "storage.postgres", false));
  KW_ASSIGN_OR_RETURN(c.sqlite_path,
                      r.Path(storage, "sqlite", "storage.sqlite", c.postgres_url.empty()));
  if (!c.postgres_url.empty()) {
    if (!c.sqlite_path.empty()) {
      return r.Error("storage", "set either storage.sqlite or storage.postgres, not both");
    }
    if (!absl::StartsWith(c.postgres_url, "postgresql://") &&
        !absl::StartsWith(c.postgres_url, "postgres://")) {
      return r.Error("storage.postgres",
                     "must be a libpq URI: postgresql://USER@HOST1:PORT1,HOST2:PORT2/DB"
                     "?target_session_attrs=read-write (keep passwords in a passfile)");
    }
  }
  const YAML::Node replica = root["replica"];
  KW_RETURN_IF_ERROR(r.OnlyKeys(replica, "replica", {"id", "lease_ttl"}));
  if (replica) {
    KW_ASSIGN_OR_RETURN(c.replica_id, r.String(replica, "id", "replica.id", true));
    KW_ASSIGN_OR_RETURN(c.lease_ttl,
                        r.Duration(replica, "lease_ttl", "replica.lease_ttl", c.lease_ttl));
    if (c.lease_ttl < absl::Seconds(2) || c.lease_ttl > absl::Minutes(10)) {
      return r.Error("replica.lease_ttl", "must be between 2s and 10m");
    }
  }
  if (!c.replica_id.empty() && !format::ValidateEnvironment(c.replica_id).ok()) {
    return r.Error("replica.id", "must be 1-32 characters of a-z, 0-9 and '-'");
  }
  if (!c.postgres_url.empty() && c.replica_id.empty()) {
    return r.Error("replica.id",
                   "is required with storage.postgres: each replica needs a name of its own "
                   "(its audit log and its claim on the scheduler lease carry it)");
  }

  const YAML::Node hsm = root["hsm"];
  if (!hsm) return r.Error("hsm", "is required");
  KW_RETURN_IF_ERROR(r.OnlyKeys(hsm, "hsm", {"module", "token_label", "pin_file",
                                             "pin_env", "root_key_label",
                                             "softhsm2_conf", "allow_software_hsm",
                                             "create_root_key"}));
  KW_ASSIGN_OR_RETURN(c.hsm.module_path, r.Path(hsm, "module", "hsm.module", true));
  KW_ASSIGN_OR_RETURN(c.hsm.token_label, r.String(hsm, "token_label", "hsm.token_label", true));
  KW_ASSIGN_OR_RETURN(c.hsm.pin_file, r.Path(hsm, "pin_file", "hsm.pin_file", false));
  KW_ASSIGN_OR_RETURN(c.hsm.pin_env, r.String(hsm, "pin_env", "hsm.pin_env", false));
  if (c.hsm.pin_file.empty() == c.hsm.pin_env.empty()) {
    return r.Error("hsm.pin_file", "set exactly one of hsm.pin_file and hsm.pin_env "
                                   "(a PIN is never taken from the command line)");
  }
  KW_ASSIGN_OR_RETURN(c.hsm.root_key_label,
                      r.String(hsm, "root_key_label", "hsm.root_key_label", false,
                               absl::StrCat("keyward-root/", c.environment)));
  KW_ASSIGN_OR_RETURN(c.hsm.create_root_key,
                      r.Bool(hsm, "create_root_key", "hsm.create_root_key", true));
  KW_ASSIGN_OR_RETURN(c.softhsm2_conf, r.Path(hsm, "softhsm2_conf", "hsm.softhsm2_conf", false));
  KW_ASSIGN_OR_RETURN(c.allow_software_hsm,
                      r.Bool(hsm, "allow_software_hsm", "hsm.allow_software_hsm", false));

  const YAML::Node tls = root["tls"];
  if (!tls) {
    return r.Error("tls", "is required: keywardd serves only mutual TLS 1.3 "
                          "(tls.cert, tls.key, tls.client_ca)");
  }
  KW_RETURN_IF_ERROR(r.OnlyKeys(tls, "tls", {"cert", "key", "client_ca", "reload_interval",
                                             "allow_dev_certificates"}));
  KW_ASSIGN_OR_RETURN(c.tls.allow_dev_certificates,
                      r.Bool(tls, "allow_dev_certificates", "tls.allow_dev_certificates",
                             false));
  KW_ASSIGN_OR_RETURN(c.tls.cert, r.Path(tls, "cert", "tls.cert", true));
  KW_ASSIGN_OR_RETURN(c.tls.key, r.Path(tls, "key", "tls.key", true));
  KW_ASSIGN_OR_RETURN(c.tls.client_ca, r.Path(tls, "client_ca", "tls.client_ca", true));
  KW_ASSIGN_OR_RETURN(c.tls_reload_interval,
                      r.Duration(tls, "reload_interval", "tls.reload_interval",
                                 c.tls_reload_interval));

  const YAML::Node limits = root["limits"];
  KW_RETURN_IF_ERROR(r.OnlyKeys(
      limits, "limits",
      {"max_request_bytes", "max_concurrent_requests", "max_memory_mib",
       "principal_max_requests", "principal_max_memory_mib", "cpu_slots",
       "handshake_failures_recorded"}));
  if (limits) {
    KW_ASSIGN_OR_RETURN(c.limits.max_request_bytes,
                        r.Int(limits, "max_request_bytes", "limits.max_request_bytes",
                              c.limits.max_request_bytes, 4096, 64 << 20));
    KW_ASSIGN_OR_RETURN(c.limits.max_concurrent_requests,
                        r.Int(limits, "max_concurrent_requests",
                              "limits.max_concurrent_requests",
                              c.limits.max_concurrent_requests, 1, 100000));
    KW_ASSIGN_OR_RETURN(c.limits.max_memory_mib,
                        r.Int(limits, "max_memory_mib", "limits.max_memory_mib",
                              c.limits.max_memory_mib, 16, 1 << 20));
    KW_ASSIGN_OR_RETURN(c.limits.principal_max_requests,
                        r.Int(limits, "principal_max_requests", "limits.principal_max_requests",
                              c.limits.principal_max_requests, 1, 100000));
    KW_ASSIGN_OR_RETURN(c.limits.principal_max_memory_mib,
                        r.Int(limits, "principal_max_memory_mib",
                              "limits.principal_max_memory_mib",
                              c.limits.principal_max_memory_mib, 8, 1 << 20));
    KW_ASSIGN_OR_RETURN(c.limits.cpu_slots,
                        r.Int(limits, "cpu_slots", "limits.cpu_slots", c.limits.cpu_slots, 0, 1024));
    KW_ASSIGN_OR_RETURN(c.limits.refusals_recorded,
                        r.Int(limits, "handshake_failures_recorded",
                              "limits.handshake_failures_recorded", c.limits.refusals_recorded, 1,
                              100000));
    if (c.limits.principal_max_memory_mib > c.limits.max_memory_mib) {
      return r.Error("limits.principal_max_memory_mib",
                     "must not be above limits.max_memory_mib");
    }
    // A request admitted for its principal must be admissible at all: its
    // admission cost is twice its size plus a little.
    if (static_cast<int64_t>(c.limits.max_request_bytes) * 2 + 16384 >
        (static_cast<int64_t>(c.limits.principal_max_memory_mib) << 20)) {
      return r.Error("limits.principal_max_memory_mib",
                     "must hold at least one request of limits.max_request_bytes (which "
                     "counts twice its size plus 16 KiB)");
    }
  }

  const YAML::Node keys = root["keys"];
  KW_RETURN_IF_ERROR(r.OnlyKeys(keys, "keys", {"default_protection",
                                               "min_destruction_wait",
                                               "default_destruction_wait",
                                               "retirement_quiet_period"}));
  if (keys) {
    KW_ASSIGN_OR_RETURN(std::string protection,
                        r.String(keys, "default_protection", "keys.default_protection",
                                 false, "wrapped-by-root"));
    auto p = keystore::ParseKekProtection(protection);
    if (!p.ok()) return r.Error("keys.default_protection", p.status().message());
    c.default_protection = *p;
    KW_ASSIGN_OR_RETURN(c.min_destruction_wait,
                        r.Duration(keys, "min_destruction_wait",
                                   "keys.min_destruction_wait", c.min_destruction_wait));
    KW_ASSIGN_OR_RETURN(c.default_destruction_wait,
                        r.Duration(keys, "default_destruction_wait",
                                   "keys.default_destruction_wait",
                                   c.default_destruction_wait));
    if (c.default_destruction_wait < c.min_destruction_wait) {
      return r.Error("keys.default_destruction_wait",
                     "must not be shorter than keys.min_destruction_wait");
    }
    KW_ASSIGN_OR_RETURN(c.retirement_quiet_period,
                        r.Duration(keys, "retirement_quiet_period",
                                   "keys.retirement_quiet_period", c.retirement_quiet_period));
  }

  const YAML::Node rotation = root["rotation"];
  KW_RETURN_IF_ERROR(r.OnlyKeys(rotation, "rotation", {"check_interval",
                                                       "usage_rotate_fraction"}));
  if (rotation) {
    KW_ASSIGN_OR_RETURN(c.rotation_check_interval,
                        r.Duration(rotation, "check_interval", "rotation.check_interval",
                                   c.rotation_check_interval));
    if (c.rotation_check_interval < absl::Seconds(1)) {
      return r.Error("rotation.check_interval", "must be at least 1s");
    }
    if (const YAML::Node f = rotation["usage_rotate_fraction"]) {
      double v = 0;
      if (!f.IsScalar() || !absl::SimpleAtod(f.as<std::string>(), &v) || v <= 0 || v > 1) {
        return r.Error("rotation.usage_rotate_fraction",
                       "must be a number above 0 and at most 1, e.g. 0.9");
      }
      c.usage_rotate_fraction = v;
    }
  }

  const YAML::Node metrics = root["metrics"];
  KW_RETURN_IF_ERROR(r.OnlyKeys(metrics, "metrics", {"key_labels"}));
  if (metrics && metrics["key_labels"]) {
    const YAML::Node globs = metrics["key_labels"];
    if (!globs.IsSequence()) {
      return r.Error("metrics.key_labels", "must be a list of key name globs, e.g. [\"payments/*\"]");
    }
    for (const YAML::Node& g : globs) {
      if (!g.IsScalar() || g.as<std::string>().empty()) {
        return r.Error("metrics.key_labels", "each entry must be a non-empty key name glob");
      }
      c.metrics_key_labels.push_back(g.as<std::string>());
    }
  }

  const YAML::Node log = root["log"];
  KW_RETURN_IF_ERROR(r.OnlyKeys(log, "log", {"format", "level"}));
  if (log) {
    KW_ASSIGN_OR_RETURN(std::string format, r.String(log, "format", "log.format", false));
    if (!format.empty()) {
      if (format != "json" && format != "text") {
        return r.Error("log.format", "must be json or text");
      }
      c.log_json = format == "json";
    }
    KW_ASSIGN_OR_RETURN(std::string level, r.String(log, "level", "log.level", false));
    if (!level.empty()) {
      auto parsed = ParseLogLevel(level);
      if (!parsed.ok()) return r.Error("log.level", "must be debug, info, warning or error");
      c.log_level = *parsed;
    }
  }

  KW_ASSIGN_OR_RETURN(c.policy_path, r.Path(root, "policy", "policy", false));
  if (c.policy_path.empty()) {
    return r.Error("policy", "is required: the access policy file (default deny; "
                             "see docs/policy.md, or `keyward dev init` for an example)");
  }

  const YAML::Node audit = root["audit"];
  if (!audit) {
    return r.Error("audit", "is required: every request is audited "
                            "(audit.dir: DIRECTORY; see docs/audit.md)");
  }
  KW_RETURN_IF_ERROR(r.OnlyKeys(audit, "audit", {"dir", "in_memory", "storage",
                                                 "checkpoint_interval", "max_wait",
                                                 "segment_max_mib", "segment_max_age",
                                                 "retention"}));
  KW_ASSIGN_OR_RETURN(c.audit.dir, r.Path(audit, "dir", "audit.dir", false));
  KW_ASSIGN_OR_RETURN(c.audit.in_memory,
                      r.Bool(audit, "in_memory", "audit.in_memory", false));
  KW_ASSIGN_OR_RETURN(std::string audit_storage,
                      r.String(audit, "storage", "audit.storage", false,
                               c.postgres_url.empty() ? "files" : "postgres"));
  if (audit_storage != "files" && audit_storage != "postgres") {
    return r.Error("audit.storage", "must be files or postgres");
  }
  c.audit.in_postgres = audit_storage == "postgres" && !c.audit.in_memory;
  if (c.audit.in_postgres && c.postgres_url.empty()) {
    return r.Error("audit.storage", "postgres needs storage.postgres");
  }
  if (!c.postgres_url.empty() && !c.audit.in_memory && !c.audit.in_postgres) {
    return r.Error("audit.storage",
                   "must be postgres with storage.postgres: a replica's records must outlive "
                   "its machine (docs/ha.md)");
  }
  if (c.audit.in_postgres && !c.audit.dir.empty()) {
    return r.Error("audit.dir", "is not used with audit.storage: postgres; remove it");
  }
  if (c.audit.in_memory) {
    if (!absl::StartsWith(c.environment, "bench")) {
      return r.Error("audit.in_memory",
                     "keeps no durable audit trail and is accepted only for "
                     "benchmark environments (names starting with 'bench')");
    }
    if (!c.audit.dir.empty()) {
      return r.Error("audit.in_memory", "set either audit.dir or audit.in_memory");
    }
  } else if (c.audit.dir.empty() && !c.audit.in_postgres) {
    return r.Error("audit.dir", "is required (a directory for the audit log)");
  }
  KW_ASSIGN_OR_RETURN(c.audit.checkpoint_interval,
                      r.Duration(audit, "checkpoint_interval",
                                 "audit.checkpoint_interval",
                                 c.audit.checkpoint_interval));
  KW_ASSIGN_OR_RETURN(c.audit.max_wait,
                      r.Duration(audit, "max_wait", "audit.max_wait", c.audit.max_wait));
  if (c.audit.checkpoint_interval < absl::Seconds(1)) {
    return r.Error("audit.checkpoint_interval", "must be at least 1s");
  }
  if (c.audit.max_wait < absl::Milliseconds(10) || c.audit.max_wait > absl::Minutes(1)) {
    return r.Error("audit.max_wait", "must be between 10ms and 1m");
  }
  KW_ASSIGN_OR_RETURN(c.audit.segment_max_mib,
                      r.Int(audit, "segment_max_mib", "audit.segment_max_mib",
                            c.audit.segment_max_mib, 1, 4096));
  KW_ASSIGN_OR_RETURN(c.audit.segment_max_age,
                      r.Duration(audit, "segment_max_age", "audit.segment_max_age",
                                 c.audit.segment_max_age));
  if (c.audit.segment_max_age < absl::Minutes(1)) {
    return r.Error("audit.segment_max_age", "must be at least 1m");
  }
  const YAML::Node retention = audit["retention"];
  KW_RETURN_IF_ERROR(r.OnlyKeys(retention, "audit.retention",
                                {"keep", "archive_dir", "force", "interval"}));
  if (retention) {
    if (c.audit.in_postgres || c.audit.in_memory) {
      return r.Error("audit.retention",
                     "applies to an audit directory (audit.dir) only: a log in PostgreSQL is "
                     "retained by the database (docs/audit.md)");
    }
    KW_ASSIGN_OR_RETURN(c.audit.retention_keep,
                        r.Duration(retention, "keep", "audit.retention.keep",
                                   absl::ZeroDuration()));
    KW_ASSIGN_OR_RETURN(c.audit.retention_archive_dir,
                        r.Path(retention, "archive_dir", "audit.retention.archive_dir", false));
    KW_ASSIGN_OR_RETURN(c.audit.retention_force,
                        r.Bool(retention, "force", "audit.retention.force", false));
    KW_ASSIGN_OR_RETURN(c.audit.retention_interval,
                        r.Duration(retention, "interval", "audit.retention.interval",
                                   c.audit.retention_interval));
    if (c.audit.retention_keep <= absl::ZeroDuration() && c.audit.retention_archive_dir.empty()) {
      return r.Error("audit.retention", "needs keep (how long records stay in the live log), "
                                        "archive_dir (where closed segments are copied), or both");
    }
    if (c.audit.retention_keep > absl::ZeroDuration() &&
        c.audit.retention_keep < absl::Hours(1)) {
      return r.Error("audit.retention.keep", "must be at least 1h");
    }
    if (c.audit.retention_force && c.audit.retention_keep <= absl::ZeroDuration()) {
      return r.Error("audit.retention.force", "needs audit.retention.keep");
    }
    if (c.audit.retention_interval < absl::Seconds(10)) {
      return r.Error("audit.retention.interval", "must be at least 10s");
    }
  }
  return c;
}

absl::Status CheckConfigFiles(const ServerConfig& c) {
  KW_RETURN_IF_ERROR(CheckReadable("tls.cert", c.tls.cert, false));
  KW_RETURN_IF_ERROR(CheckReadable("tls.key", c.tls.key, true));
  KW_RETURN_IF_ERROR(CheckReadable("tls.client_ca", c.tls.client_ca, false));
  KW_RETURN_IF_ERROR(CheckReadable("hsm.module", c.hsm.module_path, false));
  if (!c.hsm.pin_file.empty()) {
    KW_RETURN_IF_ERROR(CheckReadable("hsm.pin_file", c.hsm.pin_file, true));
  }
  if (!c.softhsm2_conf.empty()) {
    KW_RETURN_IF_ERROR(CheckReadable("hsm.softhsm2_conf", c.softhsm2_conf, false));
  }
  KW_RETURN_IF_ERROR(CheckReadable("policy", c.policy_path, false));
  return absl::OkStatus();
}

}  // namespace keyward::server
