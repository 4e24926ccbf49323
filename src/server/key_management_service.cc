// The call pipeline: admit → check limits on the wire → parse → handler →
// audit → answer.  Handlers live in handlers_*.cc.
#include "server/key_management_service.h"

#include <grpcpp/support/proto_buffer_reader.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "format/wire.h"
#include "google/protobuf/arena.h"
#include "keyward/errors.h"
#include "keystore/key_model.h"
#include "keyward/message.h"
#include "metrics/metrics.h"
#include "server/grpc_status.h"
#include "server/principal.h"

namespace keyward::server {
namespace {

using google::protobuf::Message;

// Request ids from clients are kept when they look like ids; anything else
// is replaced, so a record never carries caller-chosen free text there.
bool PlausibleRequestId(absl::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' &&
        c != '.') {
      return false;
    }
  }
  return true;
}

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

std::string NewRequestId() {
  auto bytes = crypto::RandomBytes(12);
  return bytes.ok() ? absl::BytesToHexString(*bytes) : "unknown";
}

// Memory a request may take once parsed, before its shape is known: its
// bytes twice over (the buffer and the parsed strings) plus a fixed part.
int64_t AdmissionCost(size_t bytes) { return static_cast<int64_t>(bytes) * 2 + 16384; }
// What each field occurrence adds once the shape is known.
constexpr int64_t kCostPerElement = 128;

// The serialized response of a call whose response holds secrets is in a
// buffer keywardd owns and wipes when gRPC releases it.
void WipeAndFree(void* p, size_t len) {
  OPENSSL_cleanse(p, len);
  ::operator delete(p);
}

grpc::ByteBuffer Serialize(const Message& m, bool secret) {
  const size_t size = m.ByteSizeLong();
  if (!secret) {
    grpc::Slice slice(size);
    m.SerializeWithCachedSizesToArray(const_cast<uint8_t*>(slice.begin()));
    return grpc::ByteBuffer(&slice, 1);
  }
  void* buf = ::operator new(size == 0 ? 1 : size);
  m.SerializeWithCachedSizesToArray(static_cast<uint8_t*>(buf));
  grpc::Slice slice(buf, size, &WipeAndFree);
  return grpc::ByteBuffer(&slice, 1);
}

std::string Flatten(const grpc::ByteBuffer& bb) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!bb.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

}  // namespace

std::string HashContextValue(const crypto::HmacSha256& hmac, absl::string_view key,
                             absl::string_view value) {
  std::string input;
  format::AppendBigEndian(&input, key.size(), 4);
  input.append(key.data(), key.size());
  input.append(value.data(), value.size());
  auto tag = hmac.ComputeMac(input);
  return tag.ok() ? absl::StrCat("hmac:", absl::BytesToHexString(*tag)) : "hmac:error";
}

// --- Call ---------------------------------------------------------------------

absl::Status Call::Authorize(absl::string_view key, const EncryptionContext& context,
                             uint32_t version) {
  if (key != "*") KW_RETURN_IF_ERROR(keystore::ValidateKeyName(key));
  key_ = std::string(key);
  version_ = version;
  context_ = context;
  decision_ = Check(key, context);
  decided_ = true;
  if (decision_.allowed) return absl::OkStatus();
  return MakeError(absl::StatusCode::kPermissionDenied, ErrorCode::kAccessDenied,
                   absl::StrCat("access denied: ", decision_.reason));
}

absl::Status Call::AuthorizeScope(absl::string_view scope) {
  if (scope.size() > FormatLimits::kMaxKeyNameSize) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kLimitExceeded,
                     "a key name prefix is at most 256 bytes");
  }
  for (char c : scope) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' &&
        c != '.' && c != '/') {
      return absl::InvalidArgumentError(
          "a key name prefix may only hold letters, digits, '-', '_', '.' and '/'");
    }
  }
  key_ = std::string(scope);
  context_.clear();
  decision_ = Check(scope, context_);
  decided_ = true;
  if (decision_.allowed) return absl::OkStatus();
  return MakeError(absl::StatusCode::kPermissionDenied, ErrorCode::kAccessDenied,
                   absl::StrCat("access denied: ", decision_.reason));
}

absl::Status Call::AuthorizePattern(absl::string_view pattern, const char* operation) {
  key_ = std::string(pattern);
  context_.clear();
  decision_ = service_->deps_.access->DecideScope(
      principal_, operation != nullptr ? operation : operation_, key_);
  decided_ = true;
  if (decision_.allowed) return absl::OkStatus();
  return MakeError(absl::StatusCode::kPermissionDenied, ErrorCode::kAccessDenied,
                   absl::StrCat("access denied: ", decision_.reason));
}

policy::Decision Call::Check(absl::string_view key, const EncryptionContext& context) const {
  policy::Request r{principal_, operation_, std::string(key), &context, absl::Now()};
  return service_->deps_.access->Decide(r);
}

void Call::SetBatchOutcome(std::string keys, std::optional<policy::Decision> decision,
                           std::string detail) {
  key_ = std::move(keys);
  decided_ = true;
  nothing_decided_ = !decision.has_value();
  if (decision) decision_ = std::move(*decision);
  detail_ = std::move(detail);
}

void Call::Yield() { service_->scheduler_.Yield(); }

absl::Status BatchDecisions::Decide(const std::string& key, const EncryptionContext& context) {
  if (!have_previous_ || key != previous_key_ || !(context == previous_context_)) {
    if (std::find(keys_.begin(), keys_.end(), key) == keys_.end() && keys_.size() < 16) {
      keys_.push_back(key);
    }
    previous_ = call_.Check(key, context);
    previous_key_ = key;
    previous_context_ = context;
    have_previous_ = true;
  }
  if (previous_.allowed) {
    if (allowed_++ == 0) last_allow_ = previous_;
    return absl::OkStatus();
  }
  if (denied_++ == 0) first_deny_ = previous_;
  return MakeError(absl::StatusCode::kPermissionDenied, ErrorCode::kAccessDenied,
                   absl::StrCat("access denied: ", previous_.reason));
}

void BatchDecisions::Finish(int items, int failed, absl::string_view prefix) {
  std::optional<policy::Decision> shown;
  if (allowed_ > 0) {
    shown = last_allow_;
  } else if (denied_ > 0) {
    shown = first_deny_;
  }
  call_.SetBatchOutcome(
      absl::StrJoin(keys_, ","), shown,
      absl::StrCat(prefix, "batch of ", items, ": ", malformed_, " malformed, ", denied_,
                   " denied, ", failed, " failed",
                   denied_ > 0 ? absl::StrCat(" (", first_deny_.reason, ")") : ""));
}

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

// --- The service ----------------------------------------------------------------

std::map<std::string, std::string> KeyManagementService::HashContext(
    const EncryptionContext& context) const {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : context) {
    out.emplace_hint(out.end(), k, HashContextValue(*deps_.context_hmac, k, v));
  }
  return out;
}

template <typename Req, typename Resp>
void KeyManagementService::Register(
    const char* name, const char* operation,
    absl::Status (KeyManagementService::*handler)(Call&, const Req&, Resp*),
    std::function<void(Resp*)> wipe) {
  const google::protobuf::MethodDescriptor* md =
      v1::GetServerInfoRequest::descriptor()->file()->FindServiceByName("KeyManagement")
          ->FindMethodByName(name);
  if (md == nullptr || md->input_type() != Req::descriptor() ||
      md->output_type() != Resp::descriptor()) {
    // A handler table that does not match keyward.proto is a build mistake.
    std::fprintf(stderr, "keywardd: handler %s does not match keyward.proto\n", name);
    std::abort();
  }
  auto m = std::make_unique<Method>();
  m->name = name;
  m->operation = operation;
  m->request_prototype = &Req::default_instance();
  m->response_prototype = &Resp::default_instance();
  m->invoke = [this, handler](Call& call, const Message& req, Message* resp) {
    return (this->*handler)(call, static_cast<const Req&>(req), static_cast<Resp*>(resp));
  };
  if (wipe) {
    m->wipe = [wipe](Message* resp) { wipe(static_cast<Resp*>(resp)); };
  }
  const Method* method = m.get();
  methods_.push_back(std::move(m));
  MarkMethodRawCallback(
      md->index(),
      new grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer, grpc::ByteBuffer>(
          [this, method](grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
                         grpc::ByteBuffer* response) {
            return Dispatch(*method, ctx, request, response);
          }));
}

namespace {
void WipeString(std::string* s) {
  if (!s->empty()) OPENSSL_cleanse(s->data(), s->size());
  s->clear();
}
}  // namespace

KeyManagementService::KeyManagementService(const ServiceDeps& deps)
    : deps_(deps),
      core_(deps.core),
      refusals_(deps.audit, deps.refusals),
      tarpit_(deps.tarpit),
      scheduler_(deps.scheduling) {
  using K = KeyManagementService;
  Register("GetServerInfo", "get-server-info", &K::GetServerInfo);
  Register("CreateKey", "create-key", &K::CreateKey);
  Register("GetKey", "describe", &K::GetKey);
  Register("ListKeys", "list-keys", &K::ListKeys);
  Register("RotateKey", "rotate-key", &K::RotateKey);
  Register("UpdateKey", "update-key", &K::UpdateKey);
  Register("EnableVersion", "enable-version", &K::EnableVersion);
  Register("DisableVersion", "disable-version", &K::DisableVersion);
  Register("SetPrimaryVersion", "set-primary", &K::SetPrimaryVersion);
  Register("ScheduleVersionDestruction", "destroy-version", &K::ScheduleVersionDestruction);
  Register("CancelVersionDestruction", "cancel-destroy", &K::CancelVersionDestruction);
  Register<v1::GenerateDataKeyRequest, v1::GenerateDataKeyResponse>(
      "GenerateDataKey", "generate-data-key", &K::GenerateDataKey,
      [](v1::GenerateDataKeyResponse* r) { WipeString(r->mutable_plaintext()); });
  Register("GenerateDataKeyWithoutPlaintext", "generate-data-key",
           &K::GenerateDataKeyWithoutPlaintext);
  Register<v1::DecryptDataKeyRequest, v1::DecryptDataKeyResponse>(
      "DecryptDataKey", "decrypt", &K::DecryptDataKey,
      [](v1::DecryptDataKeyResponse* r) { WipeString(r->mutable_plaintext()); });
  Register("ReWrapDataKey", "rewrap", &K::ReWrapDataKey);
  Register<v1::BatchGenerateDataKeysRequest, v1::BatchGenerateDataKeysResponse>(
      "BatchGenerateDataKeys", "generate-data-key", &K::BatchGenerateDataKeys,
      [](v1::BatchGenerateDataKeysResponse* r) {
        for (auto& dk : *r->mutable_data_keys()) WipeString(dk.mutable_plaintext());
      });
  Register<v1::BatchDecryptDataKeysRequest, v1::BatchDecryptDataKeysResponse>(
      "BatchDecryptDataKeys", "decrypt", &K::BatchDecryptDataKeys,
      [](v1::BatchDecryptDataKeysResponse* r) {
        for (auto& item : *r->mutable_results()) WipeString(item.mutable_plaintext());
      });
  Register("Encrypt", "encrypt", &K::Encrypt);
  Register<v1::DecryptRequest, v1::DecryptResponse>(
      "Decrypt", "decrypt", &K::Decrypt,
      [](v1::DecryptResponse* r) { WipeString(r->mutable_plaintext()); });
  Register("RewrapMessageHeader", "rewrap", &K::RewrapMessageHeader);
  Register("BatchRewrapMessageHeaders", "rewrap", &K::BatchRewrapMessageHeaders);
  Register("ReportDataSet", "report-data-set", &K::ReportDataSet);
  Register("ListDataSets", "describe", &K::ListDataSets);
  Register("GetDrillSamples", "describe", &K::GetDrillSamples);
  Register("GetPolicy", "manage-policy", &K::GetPolicy);
  Register("SetPolicy", "manage-policy", &K::SetPolicy);
  Register("TestPolicy", "manage-policy", &K::TestPolicy);
  Register("CreateGrant", "manage-grants", &K::CreateGrant);
  Register("ListGrants", "manage-grants", &K::ListGrants);
  Register("RevokeGrant", "manage-grants", &K::RevokeGrant);
  Register("GetAuditCheckpoint", "read-audit", &K::GetAuditCheckpoint);
  Register("GetInclusionProof", "read-audit", &K::GetInclusionProof);
  Register("GetConsistencyProof", "read-audit", &K::GetConsistencyProof);
  Register("ReadAuditRecords", "read-audit", &K::ReadAuditRecords);
  const int methods = v1::GetServerInfoRequest::descriptor()
                          ->file()
                          ->FindServiceByName("KeyManagement")
                          ->method_count();
  if (static_cast<int>(methods_.size()) != methods) {
    std::fprintf(stderr, "keywardd: %d methods in keyward.proto, %zu handlers\n", methods,
                 methods_.size());
    std::abort();
  }
}

KeyManagementService::~KeyManagementService() = default;

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
  // Admission costs no more than a few map operations: the gRPC thread
  // never parses, authorizes or computes anything for the caller.
  auto ticket = scheduler_.Admit(*principal, AdmissionCost(request->Length()));
  if (!ticket.ok()) {
    state->RefuseBeforeReading(state, ticket.status(), "principal-share", nullptr);
    return reactor;
  }
  state->set_ticket(*ticket);
  scheduler_.Run(*ticket, [state] { state->Execute(state); });
  return reactor;
}

void KeyManagementService::AuditRefusal(const std::string& source, const std::string& peer,
                                        const char* operation, const absl::Status& status,
                                        std::string detail, std::function<void()> done) {
  if (!refusals_.ShouldRecord(source, operation)) {
    if (done) done();
    return;
  }
  audit::AuditRecord r;
  r.time = absl::Now();
  r.request_id = NewRequestId();
  r.principal = source;
  r.peer = peer;
  r.operation = operation;
  r.decision = "none";
  r.result = absl::StatusCodeToString(status.code());
  r.detail = std::move(detail);
  if (done) {
    deps_.audit->Submit(std::move(r), [done = std::move(done)](absl::Status) { done(); });
  } else {
    deps_.audit->AppendAsync(std::move(r));
  }
}

}  // namespace keyward::server
