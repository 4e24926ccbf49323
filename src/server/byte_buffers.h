// gRPC byte buffers of raw-registered methods: replies serialized into
// buffers keywardd owns (wiped on release when they hold secrets), requests
// flattened for a digest, secret string fields wiped.
#ifndef KEYWARD_SERVER_BYTE_BUFFERS_H_
#define KEYWARD_SERVER_BYTE_BUFFERS_H_

#include <grpcpp/support/byte_buffer.h>

#include <string>

#include "google/protobuf/message.h"

namespace keyward::server {

// `m` serialized.  `secret`: into a buffer wiped when gRPC releases it.
grpc::ByteBuffer Serialize(const google::protobuf::Message& m, bool secret);

// The bytes of `bb` in one string; empty when they cannot be read.
std::string Flatten(const grpc::ByteBuffer& bb);

// Overwrites `s` and empties it.
void WipeString(std::string* s);

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_BYTE_BUFFERS_H_
