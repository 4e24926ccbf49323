// keywardd: the Keyward key management service.
//   keywardd --config FILE
// SIGTERM/SIGINT: stop accepting calls, finish in-flight ones, flush, exit 0.
// SIGHUP: reload the access policy and re-check the certificate files
// (they are also watched).
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/log.h"
#include "keyward/version.h"
#include "server/config.h"
#include "server/server.h"

namespace {

int Usage(FILE* out) {
  std::fprintf(out,
               "Usage: keywardd --config FILE [--new-audit-log | --adopt-audit-log]\n\n"
               "Runs the Keyward key management service: mutual TLS 1.3 gRPC\n"
               "on `listen`, health on `http_listen` (docs/configuration.md).\n"
               "Create a development setup with `keyward dev init DIR`.\n\n"
               "--new-audit-log: start a new audit log in an empty audit directory\n"
               "although the key store remembers an older one (after moving a log\n"
               "keywardd refused aside; docs/audit.md).  Recorded in the new log.\n\n"
               "--adopt-audit-log: accept an audit log the key store holds no anchor\n"
               "for (written before keywardd anchored logs, or a restored key store)\n"
               "once you have verified it; docs/audit.md.  Recorded in the log.\n\n"
               "Signals: SIGTERM/SIGINT stop gracefully; SIGHUP reloads the\n"
               "policy and certificates.  Exit codes: 0 stopped, 1 failed to start,\n"
               "2 usage.\n");
  return out == stdout ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool new_audit_log = false;
  bool adopt_audit_log = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") return Usage(stdout);
    if (a == "--version") {
      std::printf("keywardd %s\n", keyward::kVersion);
      return 0;
    }
    if (a == "--new-audit-log") {
      new_audit_log = true;
      continue;
    }
    if (a == "--adopt-audit-log") {
      adopt_audit_log = true;
      continue;
    }
    if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      config_path = a.substr(9);
    } else {
      std::fprintf(stderr, "keywardd: unknown argument '%s'\n", a.c_str());
      return Usage(stderr);
    }
  }
  if (config_path.empty()) return Usage(stderr);

  // gRPC's internal mutexes are absl::Mutex; Debian's abseil checks every
  // lock order for deadlocks at run time, which costs several percent of
  // each call.  gRPC is tested without it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Before anything touches OpenSSL's TLS: TLS 1.3 only.
  if (absl::Status s = keyward::server::EnforceTls13Only(); !s.ok()) {
    std::fprintf(stderr, "keywardd: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  // Key material must not end up in a core file.
  ::prctl(PR_SET_DUMPABLE, 0);
  rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  // Signals are handled by this thread only (sigwait below).
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto config = keyward::server::LoadServerConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "keywardd: refusing to start: %s\n",
                 std::string(config.status().message()).c_str());
    return 1;
  }
  keyward::ConfigureLog(config->log_json, config->log_level);
  if (new_audit_log && adopt_audit_log) {
    std::fprintf(stderr, "keywardd: --new-audit-log and --adopt-audit-log exclude each other\n");
    return Usage(stderr);
  }
  config->audit.start_new_log = new_audit_log;
  config->audit.adopt_log = adopt_audit_log;
  auto server = keyward::server::Server::Start(*config);
  if (!server.ok()) {
    std::fprintf(stderr, "keywardd: refusing to start: %s\n",
                 std::string(server.status().message()).c_str());
    return 1;
  }
  const auto hsm = (*server)->core().hsm_info();
  std::printf(
      "keywardd %s: environment '%s', serving mutual TLS 1.3 on port %d, "
      "health on http://%s (HSM token '%s'%s)\n",
      keyward::kVersion, config->environment.c_str(), (*server)->port(),
      config->http_listen.c_str(), hsm.token_label.c_str(),
      hsm.software ? ", software" : "");
  std::fflush(stdout);
  keyward::Log(keyward::LogLevel::kInfo, "start", "serving",
               {{"environment", config->environment},
                {"port", absl::StrCat((*server)->port())},
                {"http", config->http_listen},
                {"version", keyward::kVersion}});

  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      using keyward::LogLevel;
      absl::Status p = (*server)->ReloadPolicy();
      if (p.ok()) {
        keyward::Log(LogLevel::kInfo, "sighup", "policy reloaded");
      } else {
        keyward::Log(LogLevel::kError, "sighup",
                     absl::StrCat("policy NOT reloaded, keeping the one in force: ",
                                  p.message()));
      }
      absl::Status s = (*server)->ReloadCertificates();
      if (s.ok()) {
        keyward::Log(LogLevel::kInfo, "sighup",
                     "certificates checked; new ones take effect for new connections");
      } else {
        keyward::Log(LogLevel::kError, "sighup",
                     absl::StrCat("certificates NOT reloaded, keeping the current ones: ",
                                  s.message()));
      }
      continue;
    }
    keyward::Log(keyward::LogLevel::kInfo, "shutdown",
                 "finishing in-flight calls and stopping",
                 {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    (*server)->Shutdown(absl::Seconds(10));
    server->reset();
    keyward::Log(keyward::LogLevel::kInfo, "shutdown", "stopped");
    return 0;
  }
}
