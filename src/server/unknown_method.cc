#include "server/unknown_method.h"

#include "absl/strings/str_cat.h"
#include "server/call.h"
#include "server/grpc_status.h"
#include "server/principal.h"

namespace keyward::server {
namespace {

class Refusal final : public grpc::ServerGenericBidiReactor {
 public:
  Refusal(KeyManagementService* service, grpc::GenericCallbackServerContext* ctx) {
    auto principal = PrincipalFromAuthContext(*ctx->auth_context());
    const std::string method = Bounded(ctx->method(), 128);
    const absl::Status status = absl::UnimplementedError(absl::StrCat(
        "keywardd has no method ", method,
        "; is the client newer than the server? (`keyward server-info` shows its version)"));
    service->AuditRefusal(principal.ok() ? *principal : "(unidentified)", ctx->peer(),
                          "unknown-method", status, absl::StrCat("unknown method ", method),
                          [this, status] { Finish(ToGrpcStatus(status, nullptr)); });
  }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerGenericBidiReactor* UnknownMethodService::CreateReactor(
    grpc::GenericCallbackServerContext* ctx) {
  return new Refusal(service_, ctx);
}

}  // namespace keyward::server
