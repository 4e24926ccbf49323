#include "server/handshake_audit.h"

#include <grpc/support/log.h>

#include <atomic>
#include <cstdio>
#include <cstring>

#include "absl/strings/escaping.h"
#include "base/log.h"
#include "crypto/random.h"

namespace keyward::server {
namespace {

std::atomic<audit::AuditLog*> g_log{nullptr};

void LogFunction(gpr_log_func_args* args) {
  const char* message = args->message != nullptr ? args->message : "";
  Log(args->severity == GPR_LOG_SEVERITY_ERROR  ? LogLevel::kError
      : args->severity == GPR_LOG_SEVERITY_INFO  ? LogLevel::kInfo
      : args->severity == GPR_LOG_SEVERITY_DEBUG ? LogLevel::kDebug
                                                 : LogLevel::kWarning,
      "grpc", message,
      {{"source", absl::StrCat(args->file != nullptr ? args->file : "?", ":", args->line)}});
  audit::AuditLog* log = g_log.load(std::memory_order_acquire);
  if (log == nullptr || std::strstr(message, "andshake failed") == nullptr) return;
  audit::AuditRecord r;
  r.time = absl::Now();
  auto id = crypto::RandomBytes(12);
  r.request_id = id.ok() ? absl::BytesToHexString(*id) : "unknown";
  r.operation = "tls-handshake";
  r.decision = "deny";
  r.result = "UNAUTHENTICATED";
  r.detail = std::string(message).substr(0, 300);
  log->AppendAsync(std::move(r));
}

}  // namespace

void InstallHandshakeAuditHook(audit::AuditLog* log) {
  g_log.store(log, std::memory_order_release);
  if (log != nullptr) gpr_set_log_function(LogFunction);
}

}  // namespace keyward::server
