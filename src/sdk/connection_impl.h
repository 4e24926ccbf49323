// The channel behind keyward::Connection, shared by the role clients in
// src/sdk: the endpoints, round-robin with ejection, and the retrying call.
#ifndef KEYWARD_SDK_CONNECTION_IMPL_H_
#define KEYWARD_SDK_CONNECTION_IMPL_H_

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "keyward/connection.h"
#include "keyward/errors.h"
#include "keyward/keyring.h"
#include "keyward/v1/keyward.grpc.pb.h"
#include "sdk/rpc_retry.h"

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

// Sleeps a random part of `backoff` (full jitter).
void SleepJittered(absl::Duration backoff);
// The error of a call whose connection to `address` could not be made.
absl::Status NotConnected(absl::string_view address);
// True when keywardd itself answered the call (its request id came back),
// rather than the transport failing.
bool AnsweredByKeywardd(const grpc::ClientContext& ctx);
// The error of a state-changing call that failed after it was sent.  No
// answer from keywardd (`answered` false): kUnknown with ErrorCode
// kMayHaveBeenApplied, naming how to check.  keywardd's own answer: as is,
// except that audit-unavailable gets the same caveat (keywardd records a
// request after acting on it).
absl::Status MayHaveBeenApplied(const absl::Status& last, bool answered,
                                absl::string_view method, const RpcRetryRule* rule,
                                absl::string_view address);
// The error of a call that failed on every attempt: kUnavailable (safe to
// retry later; a state-changing call was never sent), naming the servers
// tried, with the last error's message and Keyward code.
absl::Status Exhausted(const absl::Status& last, absl::string_view method,
                       const std::vector<std::string>& tried, bool safe);

}  // namespace sdk

struct Connection::Impl {
  // One keywardd replica: its channel and its health.  Atomics only: every
  // call reads them, none takes a lock.
  struct Endpoint {
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<v1::KeyManagement::Stub> stub;
    std::atomic<int64_t> ejected_until_us{0};  // skipped until then (0: healthy)
    std::atomic<int64_t> ejected_at_us{0};
    std::atomic<uint32_t> failures_in_a_row{0};
    std::atomic<uint64_t> attempts{0}, failures{0}, ejections{0};
  };
  std::vector<std::unique_ptr<Endpoint>> endpoints;
  std::atomic<uint64_t> next{0};

  // The next endpoint in round-robin order that is not ejected; when every
  // one is, the one ejected longest ago.
  Endpoint& Pick();
  // True when every endpoint is ejected now.
  bool AllEjected() const;
  // Takes `e` out of rotation after a failure (see ClientOptions).
  void Eject(Endpoint& e, const ClientOptions& o);
  static void MarkHealthy(Endpoint& e);
  // Connects `e`'s channel, waiting up to `timeout`; false when it cannot
  // be connected, which proves that a request was not sent there.
  static bool Connect(Endpoint& e, absl::Duration timeout);

  // Runs one unary call: attempts on healthy endpoints, retried per
  // sdk::RpcRetryRule of `method_name` (connection.h, docs/sdk.md).
  template <typename Req, typename Resp>
  absl::Status Call(const ClientOptions& o, absl::string_view method_name, const Req& req,
                    Resp* resp,
                    grpc::Status (v1::KeyManagement::Stub::*method)(grpc::ClientContext*,
                                                                    const Req&, Resp*)) {
    const sdk::RpcRetryRule* rule = sdk::FindRpcRetryRule(method_name);
    const bool safe = rule != nullptr && rule->retry == sdk::RetryClass::kSafe;
    absl::Duration backoff = o.initial_backoff;
    absl::Status last;
    std::vector<std::string> tried;
    const int attempts = std::max(1, o.max_attempts);
    for (int attempt = 0; attempt < attempts; ++attempt) {
      if (attempt > 0 && AllEjected()) {
        sdk::SleepJittered(backoff);
        backoff *= 2;
      }
      Endpoint& e = Pick();
      e.attempts.fetch_add(1, std::memory_order_relaxed);
      tried.push_back(e.address);
      // A call that changes state goes out only on a connected channel, so
      // that a failure before it proves the request never left.
      if (!safe && !Connect(e, o.deadline)) {
        e.failures.fetch_add(1, std::memory_order_relaxed);
        Eject(e, o);
        last = sdk::NotConnected(e.address);
        continue;
      }
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoMilliseconds(o.deadline));
      grpc::Status s = (e.stub.get()->*method)(&ctx, req, resp);
      if (s.ok()) {
        MarkHealthy(e);
        return absl::OkStatus();
      }
      last = sdk::FromGrpc(s, ctx, e.address);
      // UNAVAILABLE: the transport failed, or keywardd answered that its
      // store or audit log is down; DEADLINE_EXCEEDED: no answer in time.
      // Any other answer is the server's own and final.
      if (s.error_code() != grpc::StatusCode::UNAVAILABLE &&
          s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
        MarkHealthy(e);
        return last;
      }
      e.failures.fetch_add(1, std::memory_order_relaxed);
      Eject(e, o);
      if (!safe) {
        return sdk::MayHaveBeenApplied(last, sdk::AnsweredByKeywardd(ctx), method_name, rule,
                                       e.address);
      }
    }
    return sdk::Exhausted(last, method_name, tried, safe);
  }
};

namespace sdk {
// Runs `method` on `connection` with its options (deadline, retries);
// method_name is the RPC's name in the service, for its retry rule.  Call
// sites write KW_RPC(Method) for both.
template <typename Req, typename Resp>
absl::Status Call(Connection& connection, const Req& req, Resp* resp,
                  absl::string_view method_name,
                  grpc::Status (v1::KeyManagement::Stub::*method)(grpc::ClientContext*,
                                                                  const Req&, Resp*)) {
  return connection.impl().Call(connection.options(), method_name, req, resp, method);
}
}  // namespace sdk

// The RPC's name and stub method, for sdk::Call.
#define KW_RPC(Method) #Method, &::keyward::v1::KeyManagement::Stub::Method

}  // namespace keyward

#endif  // KEYWARD_SDK_CONNECTION_IMPL_H_
