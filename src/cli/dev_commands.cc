// `keyward dev init DIR`: a complete development setup in one directory — a
// SoftHSM token, a key store location, a dev CA with certificates for the
// server and three principals (admin, app, approver), the server config and
// three client configs.  Nothing in it is fit for production, and a production keywardd
// refuses its software token and its dev certificates.
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "cli/cli.h"
#include "dev/dev_ca.h"
#include "crypto/random.h"
#include "crypto/signature.h"
#include "hsm/pkcs11_root_of_trust.h"
#include "keyward/errors.h"

namespace keyward::cli {
namespace {

// The development policy: the admin may do everything, the application the
// data operations on every key, the approver may read keys and the audit
// log; keys under restricted/ are decrypted by no one except under a
// break-glass grant the app requests and two others approve (docs/policy.md,
// docs/incident-response.md).
constexpr char kDevPolicy[] = R"(# keywardd access policy (development), written by `keyward dev init`.
# Default deny; an explicit deny wins (only an approved break-glass grant
# prevails over it).  Reference: docs/policy.md, docs/incident-response.md
# Change it with `keyward policy set FILE` or edit it and send keywardd SIGHUP.
rules:
  - name: dev-admin
    principals: ["spiffe://keyward.dev/admin"]
    keys: ["*"]
    operations: ["*"]
  - name: dev-app-data
    principals: ["spiffe://keyward.dev/app"]
    keys: ["*"]
    operations: [encrypt, generate-data-key, decrypt, rewrap, describe]
  - name: dev-approver-review
    principals: ["spiffe://keyward.dev/approver"]
    keys: ["*"]
    operations: [describe, list-keys, read-audit]
  - name: dev-restricted-sealed
    effect: deny
    principals: ["*"]
    keys: ["restricted/*"]
    operations: [decrypt, reencrypt]
breakglass:
  - name: dev-restricted
    keys: ["restricted/*"]
    requesters: ["spiffe://keyward.dev/app"]
    approvers: ["spiffe://keyward.dev/admin", "spiffe://keyward.dev/approver"]
    quorum: 2
    max_duration: 24h
)";

constexpr char kSoftHsmModule[] = "/usr/lib/softhsm/libsofthsm2.so";
constexpr char kSoftHsmUtil[] = "/usr/bin/softhsm2-util";

absl::Status Io(const std::string& what) {
  return MakeError(absl::StatusCode::kUnavailable, ErrorCode::kIoError,
                   absl::StrCat(what, ": ", std::strerror(errno)));
}

absl::Status WriteNewFile(const std::string& path, const std::string& data, int mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Io(absl::StrCat("cannot create ", path));
  const bool ok = ::fchmod(fd, static_cast<mode_t>(mode)) == 0 &&
                  ::write(fd, data.data(), data.size()) ==
                      static_cast<ssize_t>(data.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  return ok ? absl::OkStatus() : Io(absl::StrCat("cannot write ", path));
}

absl::Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return Io(absl::StrCat("cannot create ", path));
  }
  return absl::OkStatus();
}

bool IsEmptyDir(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return false;
  bool empty = true;
  while (dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") empty = false;
  }
  ::closedir(d);
  return empty;
}

absl::StatusOr<std::string> RandomHex(size_t bytes) {
  KW_ASSIGN_OR_RETURN(std::string r, crypto::RandomBytes(bytes));
  return absl::BytesToHexString(r);
}

absl::Status RunSoftHsmInit(const std::string& conf, const std::string& label,
                            const std::string& pin, const std::string& so_pin) {
  // The PINs go to softhsm2-util's argv; that process lives for a moment,
  // on a development machine, for a token that holds only dev keys.
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv("SOFTHSM2_CONF", conf.c_str(), 1);
    int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) ::dup2(devnull, 1);
    ::execl(kSoftHsmUtil, kSoftHsmUtil, "--init-token", "--free", "--label",
            label.c_str(), "--pin", pin.c_str(), "--so-pin", so_pin.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::UnavailableError(
        "softhsm2-util --init-token failed (is the softhsm2 package installed? "
        "scripts/install-deps installs it)");
  }
  return absl::OkStatus();
}

struct DevInitOptions {
  std::string dir;
  int port = 7443;
  int http_port = 7444;
};

absl::Status RunDevInit(const DevInitOptions& o, bool json) {
  struct stat st;
  if (::stat(o.dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode) || !IsEmptyDir(o.dir)) {
      return UsageError(absl::StrCat(
          o.dir, " exists and is not empty; `keyward dev init` only creates a "
                 "new setup (pick another directory, or remove this one)"));
    }
  }
  if (::access(kSoftHsmModule, R_OK) != 0 || ::access(kSoftHsmUtil, X_OK) != 0) {
    return absl::FailedPreconditionError(
        "SoftHSMv2 is not installed; run scripts/install-deps (package softhsm2)");
  }
  KW_RETURN_IF_ERROR(MakeDir(o.dir));
  char resolved[PATH_MAX];
  if (::realpath(o.dir.c_str(), resolved) == nullptr) {
    return Io(absl::StrCat("cannot resolve ", o.dir));
  }
  const std::string dir = resolved;
  for (const char* sub : {"/hsm", "/hsm/tokens", "/data", "/certs"}) {
    KW_RETURN_IF_ERROR(MakeDir(dir + sub));
  }
  // The SoftHSM token.
  const std::string conf = dir + "/hsm/softhsm2.conf";
  KW_RETURN_IF_ERROR(WriteNewFile(
      conf,
      absl::StrCat("# SoftHSMv2 for this Keyward dev setup only.\n"
                   "directories.tokendir = ", dir, "/hsm/tokens\n"
                   "objectstore.backend = file\nlog.level = ERROR\n"
                   "slots.removable = false\n"),
      0600));
  KW_ASSIGN_OR_RETURN(std::string pin, RandomHex(16));
  KW_ASSIGN_OR_RETURN(std::string so_pin, RandomHex(16));
  KW_RETURN_IF_ERROR(WriteNewFile(dir + "/hsm/pin", pin + "\n", 0600));
  KW_RETURN_IF_ERROR(WriteNewFile(dir + "/hsm/so-pin", so_pin + "\n", 0600));
  KW_RETURN_IF_ERROR(RunSoftHsmInit(conf, "keyward-dev", pin, so_pin));

  // The root key and the audit checkpoint signing key, made now so that
  // the signing key's fingerprint can be recorded outside the log, where
  // an auditor pins it: printed below and written to the client configs
  // (docs/audit.md).  keywardd finds both in the token at its first start.
  ::setenv("SOFTHSM2_CONF", conf.c_str(), 1);
  hsm::Pkcs11Options token;
  token.module_path = kSoftHsmModule;
  token.token_label = "keyward-dev";
  token.pin_file = dir + "/hsm/pin";
  token.root_key_label = "keyward-root/dev";
  std::string checkpoint_key_pem, checkpoint_key_fingerprint;
  {
    KW_ASSIGN_OR_RETURN(auto root, hsm::OpenPkcs11(token));
    KW_ASSIGN_OR_RETURN(checkpoint_key_pem, root->GetOrCreateSigningKey("keyward-audit/dev"));
    KW_ASSIGN_OR_RETURN(checkpoint_key_fingerprint,
                        crypto::PublicKeyFingerprint(checkpoint_key_pem));
  }
  KW_RETURN_IF_ERROR(
      WriteNewFile(dir + "/audit-checkpoint-key.pem", checkpoint_key_pem, 0644));

  // Certificates.
  KW_ASSIGN_OR_RETURN(auto ca, dev::DevCa::Create(dir));
  KW_RETURN_IF_ERROR(WriteNewFile(dir + "/certs/ca.pem", ca->cert_pem(), 0644));
  KW_ASSIGN_OR_RETURN(dev::PemPair server,
                      ca->IssueServer("keywardd", {"localhost", "keywardd"},
                                      {"127.0.0.1", "::1"}));
  KW_RETURN_IF_ERROR(WriteNewFile(dir + "/certs/server.pem", server.cert, 0644));
  KW_RETURN_IF_ERROR(WriteNewFile(dir + "/certs/server.key", server.key, 0600));
  for (const char* who : {"admin", "app", "approver"}) {
    KW_ASSIGN_OR_RETURN(dev::PemPair p, ca->IssueClient(
                                       who, absl::StrCat("spiffe://keyward.dev/", who)));
    KW_RETURN_IF_ERROR(WriteNewFile(absl::StrCat(dir, "/certs/", who, ".pem"), p.cert, 0644));
    KW_RETURN_IF_ERROR(WriteNewFile(absl::StrCat(dir, "/certs/", who, ".key"), p.key, 0600));
  }

  // Configs.
  KW_RETURN_IF_ERROR(WriteNewFile(
      dir + "/keywardd.yaml",
      absl::StrCat(
          "# keywardd, development setup made by `keyward dev init`.\n"
          "# Reference: docs/configuration.md\n"
          "environment: dev\n"
          "listen: 127.0.0.1:", o.port, "\n"
          "http_listen: 127.0.0.1:", o.http_port, "\n"
          "storage:\n"
          "  sqlite: ", dir, "/data/keys.db\n"
          "hsm:\n"
          "  module: ", kSoftHsmModule, "\n"
          "  softhsm2_conf: ", conf, "\n"
          "  token_label: keyward-dev\n"
          "  pin_file: ", dir, "/hsm/pin\n"
          "  root_key_label: keyward-root/dev\n"
          "tls:\n"
          "  cert: ", dir, "/certs/server.pem\n"
          "  key: ", dir, "/certs/server.key\n"
          "  client_ca: ", dir, "/certs/ca.pem\n"
          "limits:\n"
          "  max_request_bytes: 4194304\n"
          "  max_concurrent_requests: 1024\n"
          "keys:\n"
          "  default_protection: wrapped-by-root\n"
          "  min_destruction_wait: 1m\n"
          "  default_destruction_wait: 30d\n"
          "  retirement_quiet_period: 1m\n"
          "rotation:\n"
          "  check_interval: 30s\n"
          "  usage_rotate_fraction: 0.9\n"
          "policy: ", dir, "/policy.yaml\n"
          "audit:\n"
          "  dir: ", dir, "/audit\n"
          "  checkpoint_interval: 60s\n"
          "  max_wait: 2s\n"
          "metrics:\n"
          "  key_labels: [\"*\"]   # dev: every key name may be a metric label\n"
          "log:\n"
          "  format: text\n"
          "  level: info\n"),
      0600));
  KW_RETURN_IF_ERROR(WriteNewFile(dir + "/policy.yaml", kDevPolicy, 0644));
  for (const char* who : {"admin", "app", "approver"}) {
    KW_RETURN_IF_ERROR(WriteNewFile(
        absl::StrCat(dir, "/", who, ".yaml"),
        absl::StrCat("# keyward client config for principal spiffe://keyward.dev/",
                     who, " (dev)\n"
                     "servers: [127.0.0.1:", o.port, "]\n"
                     "environment: dev\n"
                     "tls:\n"
                     "  ca: ", dir, "/certs/ca.pem\n"
                     "  cert: ", dir, "/certs/", who, ".pem\n"
                     "  key: ", dir, "/certs/", who, ".key\n"
                     "deadline: 10s\n"
                     "audit:\n"
                     "  # The audit log's checkpoint signing key (in the HSM), pinned:\n"
                     "  # `keyward audit verify` trusts only checkpoints it signed.\n"
                     "  checkpoint_key_fingerprint: ", checkpoint_key_fingerprint, "\n"),
        0600));
  }
  if (json) {
    std::printf("{\"dir\":\"%s\",\"port\":%d,\"http_port\":%d,"
                "\"audit_checkpoint_key_fingerprint\":\"%s\"}\n",
                dir.c_str(), o.port, o.http_port, checkpoint_key_fingerprint.c_str());
  } else {
    std::printf(
        "Created a Keyward development setup in %s\n\n"
        "  start the server:   keywardd --config %s/keywardd.yaml\n"
        "  as the admin:       keyward --config %s/admin.yaml key create demo\n"
        "  as the application: keyward --config %s/app.yaml encrypt --key demo -o secret.kw FILE\n"
        "  break-glass:        keys under restricted/ are decrypted only under a grant app\n"
        "                      requests and admin and approver (approver.yaml) approve\n\n"
        "It holds a SoftHSM token, a dev CA and dev keys: for development only.\n\n"
        "Audit checkpoint signing key (pin it where you keep audit evidence):\n"
        "  fingerprint %s\n  public key  %s/audit-checkpoint-key.pem\n",
        dir.c_str(), dir.c_str(), dir.c_str(), dir.c_str(), checkpoint_key_fingerprint.c_str(),
        dir.c_str());
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterDevCommands(CLI::App& app, Globals& globals, Action& action) {
  auto* dev = app.add_subcommand("dev", "Development setups (never for production)");
  dev->require_subcommand(1);
  static DevInitOptions opts;
  auto* init = dev->add_subcommand(
      "init",
      "Create a complete development setup in a new directory: a SoftHSM\n"
      "token, a key store location, a dev CA and certificates for keywardd\n"
      "and three principals (admin, app, approver), keywardd.yaml, admin.yaml,\n"
      "app.yaml, approver.yaml.");
  init->add_option("DIR", opts.dir, "new or empty directory")->required();
  init->add_option("--port", opts.port, "gRPC port on 127.0.0.1 (default 7443)")
      ->check(CLI::Range(1, 65535));
  init->add_option("--http-port", opts.http_port,
                   "health port on 127.0.0.1 (default 7444)")
      ->check(CLI::Range(1, 65535));
  init->add_flag("--json", globals.json, "print one JSON object");
  init->callback([&globals, &action] {
    action = [&globals] { return RunDevInit(opts, globals.json); };
  });
}

}  // namespace keyward::cli
