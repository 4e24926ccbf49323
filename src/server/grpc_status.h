// The one place where absl::Status becomes grpc::Status.  Codes map one to
// one; a Keyward ErrorCode travels in the trailing metadata
// "keyward-error-code" so clients can restore it.
#ifndef KEYWARD_SERVER_GRPC_STATUS_H_
#define KEYWARD_SERVER_GRPC_STATUS_H_

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "format/wire_names.h"

namespace keyward::server {

using format::wire::kErrorCodeMetadata;  // defined once, with the SDK's side

// `context` may be null (then no metadata is added).
grpc::Status ToGrpcStatus(const absl::Status& status,
                          grpc::CallbackServerContext* context);

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_GRPC_STATUS_H_
