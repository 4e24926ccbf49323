// `keyward doctor`: checks a deployment and explains each finding with what
// to do.  Exit status 0 (all good), 1 (warnings), 2 (failures); docs/cli.md.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <utility>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "audit/audit_log.h"
#include "audit/merkle.h"
#include "audit/verifier.h"
#include "base/status_macros.h"
#include "cli/certificates.h"
#include "cli/cli.h"
#include "cli/doctor_checks.h"
#include "crypto/signature.h"
#include "nlohmann/json.hpp"
#include "policy/lint.h"

namespace keyward::cli {
namespace {

using Json = nlohmann::ordered_json;
using doctor::Finding;
using doctor::Level;

struct DoctorArgs {
  std::vector<std::string> certs;  // more certificate files to check
  std::string audit_log;           // an audit log directory to verify offline
  int cert_warn_days = 30;
};

class Doctor {
 public:
  Doctor(Globals& globals, const DoctorArgs& args) : globals_(globals), args_(args) {}

  std::vector<Finding> Run() {
    auto options = globals_.Options();
    if (!options.ok()) {
      Add({"config", Level::kFailure, std::string(options.status().message()),
           "pass --config FILE (the client config of an administrator) or set KEYWARD_CONFIG"});
      CheckCertificateFiles({});
      return std::move(findings_);
    }
    options_ = *options;
    if (!CheckServer()) {
      CheckCertificateFiles(ConfiguredCertificates());
      return std::move(findings_);
    }
    std::vector<CertificateInfo> certs = ConfiguredCertificates();
    auto served = FetchServerCertificates(options_, options_.servers.front(), absl::Seconds(5));
    if (served.ok()) {
      certs.insert(certs.end(), served->begin(), served->end());
    } else {
      Add({"certificates", Level::kWarning, std::string(served.status().message()),
           "check keywardd's tls.cert by hand: openssl x509 -noout -enddate -in FILE"});
    }
    CheckCertificateFiles(certs);
    CheckAudit();
    CheckKeys();
    CheckPolicy();
    return std::move(findings_);
  }

 private:
  void Add(Finding f) { findings_.push_back(std::move(f)); }

  // Failures to read something the doctor needs a permission for: a skip,
  // saying which permission, not a finding about the deployment.
  void Skipped(const std::string& check, const absl::Status& s, const std::string& op) {
    if (s.code() == absl::StatusCode::kPermissionDenied) {
      Add({check, Level::kSkipped,
           absl::StrCat("not checked: ", info_.principal, " may not ", op),
           absl::StrCat("run doctor as a principal allowed ", op, " (an administrator)")});
    } else {
      Add({check, Level::kWarning, absl::StrCat("could not be checked: ", s.message()),
           "run doctor again; if it persists, see keywardd's log"});
    }
  }

  std::vector<CertificateInfo> ConfiguredCertificates() {
    std::vector<CertificateInfo> out;
    const std::vector<std::pair<std::string, std::string>> files = {
        {"client", options_.cert_file}, {"ca", options_.ca_file}};
    for (const auto& [source, path] : files) {
      auto certs = ReadCertificates(path, source);
      if (!certs.ok()) {
        Add({"certificates", Level::kFailure, std::string(certs.status().message()),
             "fix tls.cert / tls.ca in the client config"});
        continue;
      }
      out.insert(out.end(), certs->begin(), certs->end());
    }
    return out;
  }

  bool CheckServer() {
    const absl::Time before = absl::Now();
    auto admin = globals_.Admin();
    absl::StatusOr<ServerInfo> info =
        admin.ok() ? (*admin)->GetServerInfo(/*check_health=*/true)
                   : absl::StatusOr<ServerInfo>(admin.status());
    const absl::Time after = absl::Now();
    if (!info.ok()) {
      Add({"server", Level::kFailure,
           absl::StrCat("keywardd at ", absl::StrJoin(options_.servers, ", "),
                        " did not answer: ", info.status().message()),
           "is keywardd running (systemctl status keywardd; its /readyz)? Is the address in "
           "the client config right, and does its certificate match the server's CA?"});
      return false;
    }
    info_ = *info;
    Add({"server", Level::kOk,
         absl::StrCat("keywardd ", info_.version, " at ", options_.servers.front(),
                      " answers; you are ", info_.principal),
         ""});
    Add({"environment", Level::kOk, absl::StrCat("environment ", info_.environment), ""});
    if (info_.health == "ok") {
      Add({"hsm", Level::kOk, absl::StrCat("HSM ready: ", info_.hsm), ""});
    } else {
      Add({"hsm", Level::kFailure,
           absl::StrCat("keywardd's HSM or key store is not usable: ",
                        info_.health.empty() ? "keywardd did not say (an older version)"
                                             : info_.health),
           "see keywardd's log and /readyz; check the PKCS#11 module, token and PIN "
           "(docs/operations.md)"});
    }
    if (info_.server_time) {
      Add(doctor::ClockSkew(*info_.server_time, before, after));
    } else {
      Add({"clock", Level::kSkipped, "keywardd does not report its clock (an older version)",
           "upgrade keywardd"});
    }
    if (info_.environment != "dev" && info_.hsm_software) {
      Add({"dev-material", Level::kFailure,
           absl::StrCat("environment ", info_.environment,
                        " runs on a software HSM (SoftHSM): its root key is a file on disk"),
           "use a real PKCS#11 HSM; hsm.allow_software_hsm is for tests only"});
    }
    return true;
  }

  void CheckCertificateFiles(std::vector<CertificateInfo> certs) {
    for (const std::string& path : args_.certs) {
      auto more = ReadCertificates(path, "file");
      if (!more.ok()) {
        Add({"certificates", Level::kFailure, std::string(more.status().message()),
             "pass --cert with a PEM certificate file"});
        continue;
      }
      certs.insert(certs.end(), more->begin(), more->end());
    }
    const absl::Time now = absl::Now();
    int good = 0;
    for (const CertificateInfo& c : certs) {
      Finding f = doctor::CertificateExpiry(c, now, absl::Hours(24 * args_.cert_warn_days));
      if (f.level == Level::kOk) {
        ++good;
      } else {
        Add(std::move(f));
      }
      if (c.dev && !info_.environment.empty() && info_.environment != "dev") {
        Add({"dev-material", Level::kFailure,
             absl::StrCat("the ", c.source, " certificate ", c.path,
                          " comes from `keyward dev init`'s dev CA, in environment ",
                          info_.environment),
             "issue certificates from your own CA; the dev CA's key sits in a dev directory"});
      }
    }
    if (good > 0) {
      Add({"certificates", Level::kOk,
           absl::StrCat(good, " certificate(s) valid for more than ", args_.cert_warn_days,
                        " days"),
           ""});
    }
    if (info_.environment == "dev") {
      Add({"dev-material", Level::kOk,
           "environment dev: SoftHSM and the dev CA are expected here", ""});
    }
  }

  void CheckAudit() {
    AdminClient* admin = *globals_.Admin();
    const std::string tampered =
        "treat the audit log as tampered with: keep a copy, run `keyward audit verify` on "
        "keywardd's host, see docs/audit.md";
    // The last checkpoint keywardd signed (none yet on a new log).
    std::optional<audit::Checkpoint> last;
    auto old_cp = admin->GetAuditCheckpoint(false);
    if (old_cp.ok()) {
      auto checked = VerifyCheckpoint(*old_cp);
      if (!checked.ok()) {
        Add({"audit", Level::kFailure,
             absl::StrCat("the audit log's last checkpoint does not verify: ",
                          checked.status().message()),
             tampered});
        return;
      }
      last = *checked;
    } else if (old_cp.status().code() != absl::StatusCode::kNotFound) {
      return Skipped("audit", old_cp.status(), "read-audit");
    }
    // A fresh checkpoint, signed in the HSM now, must verify and extend the
    // last one.
    absl::StatusOr<audit::Checkpoint> fresh = absl::UnavailableError("");
    auto fresh_cp = admin->GetAuditCheckpoint(true);
    absl::Status extends = fresh_cp.status();
    if (fresh_cp.ok()) {
      fresh = VerifyCheckpoint(*fresh_cp);
      extends = fresh.status();
    }
    if (extends.ok() && last && last->tree_size > 0 && fresh->tree_size > last->tree_size) {
      auto proof = admin->GetConsistencyProof(last->tree_size, fresh->tree_size);
      extends = proof.status();
      if (proof.ok()) {
        std::vector<audit::Hash> path;
        for (const std::string& p : proof->path) {
          audit::Hash h{};
          if (p.size() != h.size()) break;
          std::copy(p.begin(), p.end(), h.begin());
          path.push_back(h);
        }
        extends = audit::VerifyConsistency(last->tree_size, fresh->tree_size, last->root,
                                           fresh->root, path)
                      ? absl::OkStatus()
                      : absl::DataLossError(absl::StrCat(
                            "the log of ", fresh->tree_size,
                            " records does not extend the checkpoint of ", last->tree_size));
      }
    }
    if (!extends.ok()) {
      Add({"audit", Level::kFailure,
           absl::StrCat("the audit log does not verify: ", extends.message()),
           absl::IsUnavailable(extends) ? "see keywardd's log and /readyz (audit store, HSM)"
                                        : tampered});
      return;
    }
    Add({"audit", Level::kOk,
         absl::StrCat("audit log verifies: a checkpoint of ", fresh->tree_size,
                      " records signed now by key ", fresh->key_fingerprint.substr(0, 16),
                      last ? " extends the last one" : " (the first)"),
         ""});
    if (last) {
      Add(doctor::CheckpointAge(absl::Now() - last->time));
    }
    if (options_.audit_checkpoint_key_fingerprint.empty()) {
      Add({"audit", Level::kWarning,
           "the client config pins no audit checkpoint key: the checkpoints were checked "
           "against the key keywardd sent with them",
           "record the fingerprint `keyward server-info` prints, from a trusted moment, as "
           "audit.checkpoint_key_fingerprint in the client config"});
    }
    if (!args_.audit_log.empty()) {
      audit::CheckpointTrust trust;
      if (!options_.audit_checkpoint_key_fingerprint.empty()) {
        trust.fingerprints.push_back(options_.audit_checkpoint_key_fingerprint);
      } else {
        trust.fingerprints.push_back(fresh->key_fingerprint);
      }
      auto report = audit::VerifyAuditLog(args_.audit_log, trust, std::nullopt);
      if (!report.ok() || !report->ok) {
        Add({"audit", Level::kFailure,
             absl::StrCat("the audit log in ", args_.audit_log, " FAILED verification: ",
                          report.ok() ? report->problem : std::string(report.status().message())),
             "keep a copy of the directory and investigate (docs/audit.md)"});
      } else {
        Add({"audit", Level::kOk,
             absl::StrCat("the audit log in ", args_.audit_log, " verifies: ",
                          report->records, " records"),
             ""});
      }
    }
  }

  absl::StatusOr<audit::Checkpoint> VerifyCheckpoint(const AuditCheckpointInfo& info) {
    KW_ASSIGN_OR_RETURN(audit::Checkpoint c, audit::ParseCheckpoint(info.line));
    KW_ASSIGN_OR_RETURN(std::string fingerprint,
                        crypto::PublicKeyFingerprint(info.public_key_pem));
    if (fingerprint != c.key_fingerprint) {
      return absl::DataLossError("it names another signing key than the one keywardd sent");
    }
    const std::string& pin = options_.audit_checkpoint_key_fingerprint;
    if (!pin.empty() && pin != fingerprint) {
      return absl::DataLossError(absl::StrCat("signed by key ", fingerprint.substr(0, 16),
                                              ", but the client config pins ",
                                              pin.substr(0, 16)));
    }
    KW_RETURN_IF_ERROR(crypto::VerifyEcdsaP256(
        info.public_key_pem, audit::CheckpointMessage(c.environment, c.tree_size, c.root, c.time),
        c.signature));
    return c;
  }

  void CheckKeys() {
    AdminClient* admin = *globals_.Admin();
    std::vector<KeyInfo> keys;
    std::string token;
    do {
      auto page = admin->ListKeys("", 500, token);
      if (!page.ok()) return Skipped("keys", page.status(), "list-keys");
      keys.insert(keys.end(), page->keys.begin(), page->keys.end());
      token = page->next_page_token;
    } while (!token.empty());
    const absl::Time now = absl::Now();
    int overdue = 0, at_risk = 0;
    for (const KeyInfo& k : keys) {
      if (auto f = doctor::RotationOverdue(k, now); f.has_value()) {
        ++overdue;
        Add(std::move(*f));
      }
      bool needs_reports = false;
      for (const KeyVersionInfo& v : k.versions) {
        needs_reports |= v.state == KeyVersionState::kPendingDestruction || v.compromised;
      }
      if (!needs_reports) continue;
      auto reports = admin->ListDataSets(k.name);
      if (!reports.ok()) {
        Skipped("destruction", reports.status(), "describe");
        continue;
      }
      for (Finding& f : doctor::VersionsStillUsed(k, *reports, now)) {
        ++at_risk;
        Add(std::move(f));
      }
    }
    if (overdue == 0) {
      Add({"rotation", Level::kOk, absl::StrCat(keys.size(), " key(s), none overdue for rotation"),
           ""});
    }
    if (at_risk == 0) {
      Add({"destruction", Level::kOk,
           "no version scheduled for destruction or compromised still holds data", ""});
    }
  }

  void CheckPolicy() {
    AdminClient* admin = *globals_.Admin();
    auto yaml = admin->GetPolicy();
    if (!yaml.ok()) return Skipped("policy", yaml.status(), "manage-policy");
    auto parsed = policy::Policy::Parse(*yaml);
    if (!parsed.ok()) {
      Add({"policy", Level::kFailure,
           absl::StrCat("keywardd's policy does not parse here: ", parsed.status().message()),
           "check the versions of keyward and keywardd match"});
      return;
    }
    // The principals that call keywardd: those of its recent audit records.
    std::set<std::string> principals = {info_.principal};
    AuditQuery q;
    q.from_end = true;
    q.limit = 2000;
    if (auto page = admin->ReadAuditRecords(q); page.ok()) {
      for (const std::string& line : page->records) {
        Json r = Json::parse(line, nullptr, false);
        if (!r.is_object() || !r.contains("principal") || !r["principal"].is_string()) continue;
        const std::string p = r["principal"];
        // keywardd's own records ("keywardd", "keywardd:scheduler") and anonymous peers
        // are not principals a rule could name.
        if (p.empty() || p == "keywardd" || p.rfind("keywardd:", 0) == 0 || p == "-" ||
            p == "unknown") {
          continue;
        }
        principals.insert(p);
      }
    }
    const auto findings =
        policy::LintPolicy(**parsed, {principals.begin(), principals.end()});
    for (const policy::LintFinding& f : findings) {
      Add({"policy", f.severity == policy::LintFinding::Severity::kFailure ? Level::kFailure
                                                                           : Level::kWarning,
           f.problem, f.fix});
    }
    if (findings.empty()) {
      Add({"policy", Level::kOk,
           absl::StrCat((*parsed)->rules().size(), " rule(s), no lint finding (",
                        principals.size(), " principal(s) seen)"),
           ""});
    }
  }

  Globals& globals_;
  const DoctorArgs& args_;
  ClientOptions options_;
  ServerInfo info_;
  std::vector<Finding> findings_;
};

absl::Status RunDoctor(Globals& globals, const DoctorArgs& args) {
  const std::vector<Finding> findings = Doctor(globals, args).Run();
  const int code = doctor::ExitCode(findings);
  int failures = 0, warnings = 0;
  for (const Finding& f : findings) {
    failures += f.level == Level::kFailure;
    warnings += f.level == Level::kWarning;
  }
  if (globals.json) {
    Json checks = Json::array();
    for (const Finding& f : findings) {
      checks.push_back({{"check", f.check},
                        {"status", std::string(doctor::LevelName(f.level))},
                        {"finding", f.finding},
                        {"fix", f.fix}});
    }
    std::printf("%s\n", Json{{"status", code == 0 ? "ok" : code == 1 ? "warnings" : "failures"},
                             {"exit_code", code},
                             {"failures", failures},
                             {"warnings", warnings},
                             {"checks", checks}}
                            .dump()
                            .c_str());
  } else {
    std::printf("keyward doctor: %d failure(s), %d warning(s)\n\n", failures, warnings);
    for (const Finding& f : findings) {
      std::printf("%-8s %-13s %s\n", std::string(doctor::LevelName(f.level)).c_str(),
                  f.check.c_str(), f.finding.c_str());
      if (!f.fix.empty() && f.level != Level::kOk) {
        std::printf("%-8s %-13s -> %s\n", "", "", f.fix.c_str());
      }
    }
  }
  return code == 0 ? absl::OkStatus() : ExitWith(code);
}

}  // namespace

void RegisterDoctorCommands(CLI::App& app, Globals& globals, Action& action) {
  static DoctorArgs args;
  auto* cmd = app.add_subcommand(
      "doctor",
      "Check a deployment and say what to do about each finding: keywardd\n"
      "reachable, its environment and HSM, certificates expiring within 30\n"
      "days, the audit log and its last checkpoint, keys overdue for\n"
      "rotation, versions scheduled for destruction (or compromised) that\n"
      "data still uses, policy lint, dev material outside dev, clock skew.\n"
      "Exit status: 0 all good, 1 warnings, 2 failures (docs/cli.md).");
  cmd->add_option("--cert", args.certs,
                  "another certificate file to check (keywardd's tls.cert on its host, a CA);\n"
                  "repeatable");
  cmd->add_option("--audit-log", args.audit_log,
                  "also verify this audit log directory offline (on keywardd's host)");
  cmd->add_option("--cert-warn-days", args.cert_warn_days,
                  "warn about certificates expiring within this many days (default 30)")
      ->check(CLI::Range(1, 3650));
  cmd->add_flag("--json", globals.json, "print one JSON object");
  cmd->callback([&globals, &action] {
    action = [&globals] { return RunDoctor(globals, args); };
  });
}

}  // namespace keyward::cli
