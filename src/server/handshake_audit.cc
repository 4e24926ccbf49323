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

std::atomic<KeyManagementService*> g_service{nullptr};

void LogFunction(gpr_log_func_args* args) {
  const char* message = args->message != nullptr ? args->message : "";
  Log(args->severity == GPR_LOG_SEVERITY_ERROR  ? LogLevel::kError
      : args->severity == GPR_LOG_SEVERITY_INFO  ? LogLevel::kInfo
      : args->severity == GPR_LOG_SEVERITY_DEBUG ? LogLevel::kDebug
                                                 : LogLevel::kWarning,
      "grpc", message,
      {{"source", absl::StrCat(args->file != nullptr ? args->file : "?", ":", args->line)}});
  KeyManagementService* service = g_service.load(std::memory_order_acquire);
  if (service == nullptr || std::strstr(message, "andshake failed") == nullptr) return;
  service->AuditRefusal("tls-handshake", "", "tls-handshake",
                        absl::UnauthenticatedError("TLS handshake failed"),
                        std::string(message).substr(0, 300), nullptr);
}

}  // namespace

void InstallHandshakeAuditHook(KeyManagementService* service) {
  g_service.store(service, std::memory_order_release);
  if (service != nullptr) gpr_set_log_function(LogFunction);
}

}  // namespace keyward::server
