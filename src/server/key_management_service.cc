// The call pipeline: identify → size check → admit → wire scan → parse →
// handler (authorize, then the core) → audit → answer.
#include "server/key_management_service.h"

#include <grpcpp/support/proto_buffer_reader.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "crypto/hash.h"
#include "google/protobuf/arena.h"
#include "keyward/errors.h"
#include "metrics/metrics.h"
#include "server/audit_records.h"
#include "server/byte_buffers.h"
#include "server/grpc_status.h"
#include "server/principal.h"

namespace keyward::server {
namespace {

using google::protobuf::Message;

// Successes at debug, the caller's mistakes at info, keywardd's own
// failures (and integrity failures, which may be attacks) at warning.
LogLevel LogLevelFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return LogLevel::kDebug;
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
      return LogLevel::kWarning;
    default:
      return LogLevel::kInfo;
  }
}

// Memory a request may take once parsed, before its shape is known: its
// bytes twice over (the buffer and the parsed strings) plus a fixed part.
int64_t AdmissionCost(size_t bytes) { return static_cast<int64_t>(bytes) * 2 + 16384; }
// What each field occurrence adds once the shape is known.
constexpr int64_t kCostPerElement = 128;
// A light method's request (a wrapped key and its context) runs on the
// gRPC thread only up to this size.
constexpr size_t kLightRequestBytes = 8192;

}  // namespace

// Everything about one request from the moment gRPC hands it over until it
// is answered; shared by the worker task and the audit completion.
class CallState {
 public:
  using Method = KeyManagementService::Method;
  CallState(KeyManagementService* service, const Method& method,
            grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
            grpc::ByteBuffer* response)
      : service_(service),
        method_(method),
        ctx_(ctx),
        request_(request),
        response_(response),
        call_(service, method.operation),
        start_(absl::Now()),
        // DefaultReactor() may be called only once per call.
        reactor_(ctx->DefaultReactor()) {
    if (auto it = ctx->client_metadata().find("x-request-id");
        it != ctx->client_metadata().end() &&
        PlausibleRequestId(absl::string_view(it->second.data(), it->second.size()))) {
      request_id_.assign(it->second.data(), it->second.size());
    } else {
      request_id_ = NewRequestId();
    }
    ctx->AddTrailingMetadata("keyward-request-id", request_id_);
    call_.request_id_ = request_id_;
    call_.peer_ = ctx->peer();
  }

  Call& call() { return call_; }
  grpc::ServerUnaryReactor* reactor() const { return reactor_; }
  void set_ticket(std::shared_ptr<FairScheduler::Ticket> t) { ticket_ = std::move(t); }

  // On a worker thread, with a CPU slot.
  void Execute(const std::shared_ptr<CallState>& self) {
    const ServiceDeps& deps = service_->deps_;
    if (!deps.audit->Health().ok()) {
      // Nothing is done that could not be recorded; Submit refuses at once
      // and counts the refusal.
      audit_down_ = true;
      return Finish(self, absl::OkStatus());
    }
    RequestShape shape;
    {
      grpc::ProtoBufferReader reader(const_cast<grpc::ByteBuffer*>(request_));
      absl::Status scanned =
          ScanRequest(reader, *method_.request_prototype->GetDescriptor(), deps.wire, &shape);
      if (!scanned.ok()) {
        return RefuseBeforeReading(self, scanned,
                                   GetErrorCode(scanned) == ErrorCode::kLimitExceeded
                                       ? "limit-exceeded"
                                       : "invalid-request",
                                   &shape);
      }
    }
    if (absl::Status more = service_->scheduler_.AddCost(
            *ticket_, static_cast<int64_t>(shape.elements) * kCostPerElement);
        !more.ok()) {
      return RefuseBeforeReading(self, more, "principal-share", &shape);
    }
    Message* request = method_.request_prototype->New(&arena_);
    {
      grpc::ProtoBufferReader reader(const_cast<grpc::ByteBuffer*>(request_));
      if (!request->ParseFromZeroCopyStream(&reader)) {
        return RefuseBeforeReading(
            self,
            absl::InvalidArgumentError(absl::StrCat(
                "the request is not a valid ", request->GetDescriptor()->full_name(),
                " message (strings must be UTF-8); use a Keyward client")),
            "invalid-request", &shape);
      }
    }
    Message* response = method_.response_prototype->New(&arena_);
    absl::Status status = method_.invoke(call_, *request, response);
    if (status.ok() && !call_.decided()) {
      status = absl::InternalError("the request was not authorized; refusing");
    }
    if (status.ok()) {
      if (response->ByteSizeLong() > deps.max_reply_bytes) {
        status = MakeError(absl::StatusCode::kResourceExhausted, ErrorCode::kLimitExceeded,
                           absl::StrCat("the reply would be over ", deps.max_reply_bytes >> 20,
                                        " MiB; ask for less at a time"));
      } else {
        *response_ = Serialize(*response, method_.wipe != nullptr);
      }
    }
    if (method_.wipe) method_.wipe(response);
    Finish(self, std::move(status));
  }

  // Refused before the request was read: the record holds a bounded
  // summary (sizes, counts, a digest), never the input; beyond a burst per
  // principal, refusals are counted into a summary record instead.
  void RefuseBeforeReading(const std::shared_ptr<CallState>& self, absl::Status status,
                           const char* reason, const RequestShape* shape) {
    refused_before_reading_ = true;
    if (!service_->refusals_.ShouldRecord(call_.principal_, reason)) {
      // Counted for the summary record: no digest, no record.  A caller
      // that keeps sending what is refused waits longer and longer for
      // the answer (Tarpit); its request's bytes go now.
      const absl::Duration delay = service_->tarpit_.Delay(call_.principal_);
      if (delay == absl::ZeroDuration()) return Answer(status, absl::OkStatus());
      const_cast<grpc::ByteBuffer*>(request_)->Clear();
      ticket_.reset();
      service_->tarpit_.Hold(delay, [self, status] { self->Answer(status, absl::OkStatus()); });
      return;
    }
    std::string digest;
    if (shape != nullptr) {
      const auto d = crypto::Sha256(Flatten(*request_));
      digest = absl::BytesToHexString(
          absl::string_view(reinterpret_cast<const char*>(d.data()), 8));
    }
    detail_override_ = absl::StrCat(
        "refused before reading (", reason, "): ", status.message(), "; request ",
        request_->Length(), " bytes",
        shape != nullptr ? absl::StrCat(", ", shape->elements, " fields seen, sha256 ", digest, "…")
                         : "");
    Finish(self, std::move(status));
  }

  // Builds the audit record and answers once it is durable.
  void Finish(const std::shared_ptr<CallState>& self, absl::Status status) {
    const ServiceDeps& deps = service_->deps_;
    audit::AuditRecord record;
    record.time = start_;
    record.request_id = request_id_;
    record.principal = call_.principal_;
    record.peer = ctx_->peer();
    record.operation = call_.operation_;
    record.key = call_.key_;
    record.version = call_.version_;
    if (call_.decided_) record.context = service_->HashContext(call_.context_);
    const bool decided = call_.decided_ && !call_.public_ && !call_.nothing_decided_;
    record.decision = !decided ? "none" : call_.decision_.allowed ? "allow" : "deny";
    record.rule = decided ? call_.decision_.rule : "";
    record.result = audit_down_ ? "UNAVAILABLE" : absl::StatusCodeToString(status.code());
    const ErrorCode code = GetErrorCode(status);
    if (code != ErrorCode::kNone) record.error_code = std::string(ErrorCodeName(code));
    if (refused_before_reading_) {
      record.detail = detail_override_;
    } else if (decided && !call_.decision_.allowed) {
      record.detail = call_.decision_.reason;
    } else {
      record.detail = call_.detail_;
    }
    record.latency_us = absl::ToInt64Microseconds(absl::Now() - start_);
    if (record.decision == "deny") {
      static auto& denials = metrics::Global().CounterFamily(
          "keyward_policy_denials_total",
          "Requests the access policy denied (a batch with denied items counts once).",
          {"operation"});
      denials.With({call_.operation_}).Inc();
    }
    // The response leaves only once its record is durable.  Submit calls
    // back from the audit writer, so no thread waits for the disk meanwhile.
    deps.audit->Submit(std::move(record), [self, status = std::move(status)](
                                              absl::Status audited) mutable {
      self->Answer(status, audited);
    });
  }

  void Answer(const absl::Status& status, const absl::Status& audited) {
    const absl::Status& final_status = audited.ok() ? status : audited;
    static auto& requests = metrics::Global().CounterFamily(
        "keyward_rpc_requests_total", "gRPC requests by method and result code.",
        {"method", "code"});
    static auto& durations = metrics::Global().HistogramFamily(
        "keyward_rpc_duration_seconds",
        "gRPC request latency (until the audit record is durable), by method and code.",
        {"method", "code"});
    const metrics::LabelValues labels{method_.name,
                                      absl::StatusCodeToString(final_status.code())};
    const absl::Duration took = absl::Now() - start_;
    requests.With(labels).Inc();
    durations.With(labels).ObserveDuration(took);
    const LogLevel level = LogLevelFor(final_status.code());
    if (LogEnabled(level)) {
      Log(level, "request", final_status.ok() ? "ok" : final_status.message(),
          {{"request_id", request_id_},
           {"method", method_.name},
           {"principal", call_.principal_},
           {"key", call_.key_},
           {"version", absl::StrCat(call_.version_)},
           {"code", labels[1]},
           {"latency_ms", absl::StrCat(absl::ToDoubleMilliseconds(took))}});
    }
    if (!final_status.ok()) {
      // A failed call sends no response bytes (a refusal may have left a
      // serialized reply behind).
      response_->Clear();
    }
    // The caller may send its next request the moment it has this answer:
    // the count goes back first (the memory cost stays until gRPC is done).
    if (ticket_ != nullptr) ticket_->Answered();
    reactor_->Finish(ToGrpcStatus(final_status, ctx_));
  }

 private:
  KeyManagementService* const service_;
  const Method& method_;
  grpc::CallbackServerContext* const ctx_;
  const grpc::ByteBuffer* const request_;
  grpc::ByteBuffer* const response_;
  Call call_;
  const absl::Time start_;
  grpc::ServerUnaryReactor* const reactor_;
  std::string request_id_;
  std::shared_ptr<FairScheduler::Ticket> ticket_;
  google::protobuf::Arena arena_;
  bool audit_down_ = false;
  bool refused_before_reading_ = false;
  std::string detail_override_;
};

grpc::ServerUnaryReactor* KeyManagementService::Dispatch(const Method& method,
                                                         grpc::CallbackServerContext* ctx,
                                                         const grpc::ByteBuffer* request,
                                                         grpc::ByteBuffer* response) {
  auto state = std::make_shared<CallState>(this, method, ctx, request, response);
  grpc::ServerUnaryReactor* reactor = state->reactor();
  auto principal = PrincipalFromAuthContext(*ctx->auth_context());
  if (!principal.ok()) {
    // Mutual TLS makes this rare (a certificate keywardd will not take as
    // an identity); recorded like any refusal.
    state->call().principal_ = "(unidentified)";
    state->RefuseBeforeReading(state, principal.status(), "unauthenticated", nullptr);
    return reactor;
  }
  state->call().principal_ = *principal;
  if (request->Length() > deps_.max_request_bytes) {
    state->RefuseBeforeReading(
        state,
        // RESOURCE_EXHAUSTED, as gRPC answers for a message over its size
        // limit: clients split what they send on it.
        MakeError(absl::StatusCode::kResourceExhausted, ErrorCode::kLimitExceeded,
                  absl::StrCat("the request is ", request->Length(), " bytes, over the limit of ",
                               deps_.max_request_bytes, " (limits.max_request_bytes)")),
        "limit-exceeded", nullptr);
    return reactor;
  }
  // Admission costs no more than a few map operations; the gRPC thread
  // parses and computes for the caller only for a light call, under its
  // share (below).
  auto ticket = scheduler_.Admit(*principal, AdmissionCost(request->Length()));
  if (!ticket.ok()) {
    state->RefuseBeforeReading(state, ticket.status(), "principal-share", nullptr);
    return reactor;
  }
  state->set_ticket(*ticket);
  std::function<void()> task = [state] { state->Execute(state); };
  // A short call with a slot free runs here: the hand-off to a worker
  // would cost more than the call.  The slot is taken as a worker's would
  // be, so the principal's share is the same either way.
  if (method.light && request->Length() <= kLightRequestBytes &&
      scheduler_.RunHereIfIdle(*ticket, task)) {
    return reactor;
  }
  scheduler_.Run(*ticket, std::move(task));
  return reactor;
}

}  // namespace keyward::server
