// Calls to methods keywardd does not have.  gRPC would answer UNIMPLEMENTED
// without telling anyone; keywardd records them (through RefusalAudit, so a
// flood of them is summarized) and then answers UNIMPLEMENTED, without
// reading the request.
#ifndef KEYWARD_SERVER_UNKNOWN_METHOD_H_
#define KEYWARD_SERVER_UNKNOWN_METHOD_H_

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include "server/key_management_service.h"

namespace keyward::server {

class UnknownMethodService final : public grpc::CallbackGenericService {
 public:
  explicit UnknownMethodService(KeyManagementService* service) : service_(service) {}
  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* ctx) override;

 private:
  KeyManagementService* const service_;
};

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_UNKNOWN_METHOD_H_
