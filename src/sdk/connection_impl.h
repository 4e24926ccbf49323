// The channel behind keyward::Connection, shared by the role clients in
// src/sdk: the stubs, round-robin, and the retrying call.
#ifndef KEYWARD_SDK_CONNECTION_IMPL_H_
#define KEYWARD_SDK_CONNECTION_IMPL_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "crypto/random.h"
#include "keyward/connection.h"
#include "keyward/errors.h"
#include "keyward/keyring.h"
#include "keyward/v1/keyward.grpc.pb.h"

namespace keyward {
namespace sdk {

// A gRPC status as an absl::Status with the Keyward code keywardd attached.
absl::Status FromGrpc(const grpc::Status& s, const grpc::ClientContext& ctx,
                      absl::string_view server);
// Overwrites a string that held key material.
void Wipe(std::string* s);
// A batch item's error as a status with its Keyward code.
absl::Status ItemStatus(int code, const std::string& error, const std::string& error_code);
KeyReference FromProto(const v1::KeyReference& r);
void ToProto(const EncryptionContext& ctx, google::protobuf::Map<std::string, std::string>* out);

}  // namespace sdk

struct Connection::Impl {
  std::vector<std::string> addresses;
  std::vector<std::unique_ptr<v1::KeyManagement::Stub>> stubs;
  std::atomic<uint64_t> next{0};

  // Runs one unary call with deadline and UNAVAILABLE-only retries, moving
  // to the next server on each attempt.
  template <typename Req, typename Resp>
  absl::Status Call(const ClientOptions& o, const Req& req, Resp* resp,
                    grpc::Status (v1::KeyManagement::Stub::*method)(
                        grpc::ClientContext*, const Req&, Resp*)) {
    absl::Duration backoff = o.initial_backoff;
    absl::Status last;
    for (int attempt = 0; attempt < std::max(1, o.max_attempts); ++attempt) {
      const size_t i = next.fetch_add(1) % stubs.size();
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoMilliseconds(o.deadline));
      grpc::Status s = (stubs[i].get()->*method)(&ctx, req, resp);
      if (s.ok()) return absl::OkStatus();
      last = sdk::FromGrpc(s, ctx, addresses[i]);
      if (s.error_code() != grpc::StatusCode::UNAVAILABLE) return last;
      // The server answered: its audit log is down.  Retrying at once will
      // not help, and the call may have changed state before the record
      // failed.
      if (GetErrorCode(last) == ErrorCode::kAuditUnavailable) return last;
      // Full jitter: sleep a random part of the backoff.
      auto r = crypto::RandomBytes(2);
      const double fraction =
          r.ok() ? (static_cast<uint8_t>((*r)[0]) * 256 + static_cast<uint8_t>((*r)[1])) / 65536.0
                 : 0.5;
      std::this_thread::sleep_for(absl::ToChronoMicroseconds(backoff * fraction));
      backoff *= 2;
    }
    return last;
  }
};


namespace sdk {
// Runs `method` on `connection` with its options (deadline, retries).
template <typename Req, typename Resp>
absl::Status Call(Connection& connection, const Req& req, Resp* resp,
                  grpc::Status (v1::KeyManagement::Stub::*method)(grpc::ClientContext*,
                                                                  const Req&, Resp*)) {
  return connection.impl().Call(connection.options(), req, resp, method);
}
}  // namespace sdk

}  // namespace keyward

#endif  // KEYWARD_SDK_CONNECTION_IMPL_H_
