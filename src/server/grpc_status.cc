#include "server/grpc_status.h"

#include "keyward/errors.h"

namespace keyward::server {

grpc::Status ToGrpcStatus(const absl::Status& status,
                          grpc::CallbackServerContext* context) {
  if (status.ok()) return grpc::Status::OK;
  const ErrorCode code = GetErrorCode(status);
  if (context != nullptr && code != ErrorCode::kNone) {
    context->AddTrailingMetadata(kErrorCodeMetadata,
                                 std::string(ErrorCodeName(code)));
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

}  // namespace keyward::server
