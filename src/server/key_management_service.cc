#include "server/key_management_service.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "crypto/random.h"
#include "format/wire.h"
#include "kms/batch_rewrap.h"
#include "kms/data_key_blob.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "format/header.h"
#include "keyward/errors.h"
#include "keyward/message.h"
#include "keyward/version.h"
#include "kms/kms_keyring.h"
#include "metrics/metrics.h"
#include "server/convert.h"
#include "server/grpc_status.h"
#include "server/principal.h"

namespace keyward::server {
namespace {

// A reactor that wipes secret response fields when gRPC has sent them.
class WipingReactor final : public grpc::ServerUnaryReactor {
 public:
  explicit WipingReactor(std::function<void()> wipe) : wipe_(std::move(wipe)) {}
  void OnDone() override {
    wipe_();
    delete this;
  }

 private:
  std::function<void()> wipe_;
};

void Wipe(std::string* s) {
  if (!s->empty()) OPENSSL_cleanse(s->data(), s->size());
  s->clear();
}

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

// One call on its way through Run: who asked, what the policy decided, and
// what the audit record will say.
class Call {
 public:
  Call(KeyManagementService* service, const char* operation)
      : service_(service), operation_(operation) {}

  const std::string& principal() const { return principal_; }

  // Asks the policy whether the caller may do this call's operation on
  // `key`, and records the decision.  Errors: kPermissionDenied
  // (access-denied) naming the principal, operation and key.
  absl::Status Authorize(absl::string_view key, const EncryptionContext& context,
                         uint32_t version = 0) {
    key_ = std::string(key);
    version_ = version;
    context_ = context;
    decision_ = Check(key, context);
    decided_ = true;
    if (decision_.allowed) return absl::OkStatus();
    return MakeError(absl::StatusCode::kPermissionDenied, ErrorCode::kAccessDenied,
                     absl::StrCat("access denied: ", decision_.reason));
  }

  // The decision alone (for the items of a batch).
  policy::Decision Check(absl::string_view key, const EncryptionContext& context) const {
    policy::Request r{principal_, operation_, std::string(key), &context, absl::Now()};
    return service_->deps_.access->Decide(r);
  }

  // For calls whose checks happened item by item (batches).
  void SetBatchOutcome(std::string keys, policy::Decision decision, std::string detail) {
    key_ = std::move(keys);
    decision_ = std::move(decision);
    decided_ = true;
    detail_ = std::move(detail);
  }
  void set_version(uint32_t v) { version_ = v; }
  void set_detail(std::string d) { detail_ = std::move(d); }
  void set_public() { decided_ = true; public_ = true; }
  bool decided() const { return decided_; }

 private:
  friend class KeyManagementService;
  KeyManagementService* const service_;
  const char* const operation_;
  std::string principal_;
  std::string key_;
  uint32_t version_ = 0;
  EncryptionContext context_;
  bool decided_ = false;
  bool public_ = false;  // needs no permission (server info)
  policy::Decision decision_;
  std::string detail_;
};

std::map<std::string, std::string> KeyManagementService::HashContext(
    const EncryptionContext& context) const {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : context) out[k] = HashContextValue(*deps_.context_hmac, k, v);
  return out;
}

KeyManagementService::Reactor* KeyManagementService::Run(
    Ctx* ctx, const char* method, Target target, const std::function<absl::Status(Call&)>& handler,
    std::function<void()> wipe) {
  const absl::Time start = absl::Now();
  Call call(this, target.operation);
  std::string request_id;
  if (auto it = ctx->client_metadata().find("x-request-id");
      it != ctx->client_metadata().end() &&
      PlausibleRequestId(absl::string_view(it->second.data(), it->second.size()))) {
    request_id.assign(it->second.data(), it->second.size());
  } else {
    request_id = NewRequestId();
  }

  absl::Status status;
  bool audit_down = false;
  const int now = in_flight_.fetch_add(1) + 1;
  if (now > max_in_flight_) {
    status = absl::ResourceExhaustedError(absl::StrCat(
        "keywardd is at its limit of ", max_in_flight_,
        " concurrent requests; retry with backoff"));
  } else if (auto principal = PrincipalFromAuthContext(*ctx->auth_context());
             !principal.ok()) {
    status = principal.status();
  } else if (call.principal_ = *principal; !deps_.audit->Health().ok()) {
    // Nothing is done that could not be recorded; Append below refuses
    // at once and counts the refusal.
    audit_down = true;
  } else {
    if (!target.key.empty()) {
      status = call.Authorize(target.key, target.context);
    }
    if (status.ok()) status = handler(call);
    if (status.ok() && !call.decided()) {
      status = absl::InternalError("the request was not authorized; refusing");
    }
  }

  audit::AuditRecord record;
  record.time = start;
  record.request_id = request_id;
  record.principal = call.principal_;
  record.peer = ctx->peer();
  record.operation = target.operation;
  record.key = call.key_.empty() ? target.key : call.key_;
  record.version = call.version_;
  record.context = HashContext(call.decided_ ? call.context_ : target.context);
  record.decision = !call.decided_ || call.public_ ? "none"
                    : call.decision_.allowed      ? "allow"
                                                  : "deny";
  record.rule = call.decision_.rule;
  record.result = audit_down ? "UNAVAILABLE" : absl::StatusCodeToString(status.code());
  const ErrorCode code = GetErrorCode(status);
  if (code != ErrorCode::kNone) record.error_code = std::string(ErrorCodeName(code));
  if (!call.decision_.allowed && call.decided_ && !call.public_) {
    record.detail = call.decision_.reason;
  } else {
    record.detail = call.detail_;
  }
  record.latency_us = absl::ToInt64Microseconds(absl::Now() - start);
  // The response leaves only once its record is durable.  Submit calls back
  // from the audit writer, so no gRPC thread waits for the disk meanwhile.
  ctx->AddTrailingMetadata("keyward-request-id", request_id);
  Reactor* reactor = wipe ? new WipingReactor(std::move(wipe)) : ctx->DefaultReactor();
  if (record.decision == "deny") {
    static auto& denials = metrics::Global().CounterFamily(
        "keyward_policy_denials_total", "Requests the access policy denied (a batch with denied items counts once).",
        {"operation"});
    denials.With({target.operation}).Inc();
  }
  // What the log line needs (never the context or any payload).
  struct LogLine {
    std::string request_id, principal, key;
    uint32_t version;
  };
  LogLine line{request_id, record.principal, record.key, record.version};
  deps_.audit->Submit(
      std::move(record), [this, ctx, reactor, method, start, line = std::move(line),
                          status = std::move(status)](absl::Status audited) {
        in_flight_.fetch_sub(1);
        const absl::Status& final_status = audited.ok() ? status : audited;
        static auto& requests = metrics::Global().CounterFamily(
            "keyward_rpc_requests_total", "gRPC requests by method and result code.",
            {"method", "code"});
        static auto& durations = metrics::Global().HistogramFamily(
            "keyward_rpc_duration_seconds",
            "gRPC request latency (until the audit record is durable), by method and code.",
            {"method", "code"});
        const metrics::LabelValues labels{method, absl::StatusCodeToString(final_status.code())};
        const absl::Duration took = absl::Now() - start;
        requests.With(labels).Inc();
        durations.With(labels).ObserveDuration(took);
        const LogLevel level = LogLevelFor(final_status.code());
        if (LogEnabled(level)) {
          Log(level, "request", final_status.ok() ? "ok" : final_status.message(),
              {{"request_id", line.request_id},
               {"method", method},
               {"principal", line.principal},
               {"key", line.key},
               {"version", absl::StrCat(line.version)},
               {"code", labels[1]},
               {"latency_ms", absl::StrCat(absl::ToDoubleMilliseconds(took))}});
        }
        reactor->Finish(ToGrpcStatus(final_status, ctx));
      });
  return reactor;
}

KeyManagementService::Reactor* KeyManagementService::GetServerInfo(
    Ctx* ctx, const v1::GetServerInfoRequest*, v1::ServerInfo* resp) {
  return Run(ctx, "GetServerInfo", {"get-server-info", "", {}}, [&](Call& call) {
    call.set_public();
    const hsm::HsmInfo hsm = core_->hsm_info();
    resp->set_environment(core_->environment());
    resp->set_version(kVersion);
    resp->add_suites(std::string(SuiteName(Suite::kAes256GcmHkdfSha256Commit)));
    resp->add_suites(
        std::string(SuiteName(Suite::kChaCha20Poly1305HkdfSha256Commit)));
    resp->set_hsm(absl::StrCat(hsm.token_label, " (", hsm.manufacturer, " ",
                               hsm.model, ")"));
    resp->set_hsm_software(hsm.software);
    resp->set_principal(call.principal());
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::CreateKey(
    Ctx* ctx, const v1::CreateKeyRequest* req, v1::Key* resp) {
  return Run(ctx, "CreateKey", {"create-key", req->name(), {}}, [&](Call&) -> absl::Status {
    kms::CreateKeyRequest r;
    r.name = req->name();
    if (!req->purpose().empty()) {
      KW_ASSIGN_OR_RETURN(r.purpose, keystore::ParseKeyPurpose(req->purpose()));
    }
    if (!req->suite().empty()) {
      if (req->suite() == SuiteName(Suite::kAes256GcmHkdfSha256Commit)) {
        r.suite = Suite::kAes256GcmHkdfSha256Commit;
      } else if (req->suite() ==
                 SuiteName(Suite::kChaCha20Poly1305HkdfSha256Commit)) {
        r.suite = Suite::kChaCha20Poly1305HkdfSha256Commit;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown suite '", req->suite(), "'"));
      }
    }
    r.labels = {req->labels().begin(), req->labels().end()};
    r.rotation_period = absl::Seconds(req->rotation_period_seconds());
    if (!req->protection().empty()) {
      KW_ASSIGN_OR_RETURN(r.protection,
                          keystore::ParseKekProtection(req->protection()));
    }
    KW_ASSIGN_OR_RETURN(keystore::Key key, core_->CreateKey(r));
    ToProto(key, resp);
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::GetKey(
    Ctx* ctx, const v1::GetKeyRequest* req, v1::Key* resp) {
  return Run(ctx, "GetKey", {"describe", req->name(), {}}, [&](Call&) -> absl::Status {
    KW_ASSIGN_OR_RETURN(keystore::Key key, core_->GetKey(req->name()));
    ToProto(key, resp);
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::ListKeys(
    Ctx* ctx, const v1::ListKeysRequest* req, v1::ListKeysResponse* resp) {
  // Checked against the prefix as a key name: a rule for "payments/*" may
  // list "payments/"; listing everything needs a rule that matches "".
  return Run(ctx, "ListKeys", {"list-keys", "", {}}, [&](Call& call) -> absl::Status {
    KW_RETURN_IF_ERROR(call.Authorize(req->prefix(), {}));
    KW_ASSIGN_OR_RETURN(
        keystore::KeyPage page,
        core_->ListKeys(req->prefix(), req->page_size() == 0 ? 100 : req->page_size(),
                        req->page_token()));
    for (const keystore::Key& key : page.keys) ToProto(key, resp->add_keys());
    resp->set_next_page_token(page.next_page_token);
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::RotateKey(
    Ctx* ctx, const v1::RotateKeyRequest* req, v1::Key* resp) {
  return Run(ctx, "RotateKey", {"rotate-key", req->name(), {}}, [&](Call& call) -> absl::Status {
    KW_ASSIGN_OR_RETURN(keystore::Key key, core_->RotateKey(req->name()));
    call.set_version(key.primary_version);
    ToProto(key, resp);
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::UpdateKey(
    Ctx* ctx, const v1::UpdateKeyRequest* req, v1::Key* resp) {
  return Run(ctx, "UpdateKey", {"update-key", req->name(), {}}, [&](Call&) -> absl::Status {
    kms::UpdateKeyRequest r;
    if (req->set_rotation_period()) {
      r.rotation_period = absl::Seconds(req->rotation_period_seconds());
    }
    r.set_labels = {req->set_labels().begin(), req->set_labels().end()};
    r.remove_labels = {req->remove_labels().begin(), req->remove_labels().end()};
    KW_ASSIGN_OR_RETURN(keystore::Key key, core_->UpdateKey(req->name(), r));
    ToProto(key, resp);
    return absl::OkStatus();
  });
}

#define KW_VERSION_HANDLER(Method, op)                                         \
  KeyManagementService::Reactor* KeyManagementService::Method(                 \
      Ctx* ctx, const v1::VersionRequest* req, v1::Key* resp) {                \
    return Run(ctx, #Method, {op, req->name(), {}}, [&](Call& call) -> absl::Status {    \
      call.set_version(req->version());                                        \
      KW_ASSIGN_OR_RETURN(keystore::Key key,                                   \
                          core_->Method(req->name(), req->version()));         \
      ToProto(key, resp);                                                       \
      return absl::OkStatus();                                                  \
    });                                                                         \
  }
KW_VERSION_HANDLER(EnableVersion, "enable-version")
KW_VERSION_HANDLER(SetPrimaryVersion, "set-primary")
KW_VERSION_HANDLER(CancelVersionDestruction, "cancel-destroy")
#undef KW_VERSION_HANDLER

namespace {
// What forcing went past, for the audit record.
std::string ForcedDetail(kms::KeyService* core, const std::string& name, uint32_t version) {
  const absl::Status gate = core->CheckRetirement(name, version);
  if (gate.ok()) return "force requested; the retirement gate had no objection";
  return absl::StrCat("FORCED past the retirement gate: ", gate.message());
}
}  // namespace

KeyManagementService::Reactor* KeyManagementService::DisableVersion(
    Ctx* ctx, const v1::VersionRequest* req, v1::Key* resp) {
  return Run(ctx, "DisableVersion", {"disable-version", req->name(), {}}, [&](Call& call) -> absl::Status {
    call.set_version(req->version());
    if (req->force()) call.set_detail(ForcedDetail(core_, req->name(), req->version()));
    KW_ASSIGN_OR_RETURN(keystore::Key key,
                        core_->DisableVersion(req->name(), req->version(), req->force()));
    ToProto(key, resp);
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::ScheduleVersionDestruction(
    Ctx* ctx, const v1::ScheduleVersionDestructionRequest* req, v1::Key* resp) {
  return Run(ctx, "ScheduleVersionDestruction", {"destroy-version", req->name(), {}}, [&](Call& call) -> absl::Status {
    call.set_version(req->version());
    if (req->force()) call.set_detail(ForcedDetail(core_, req->name(), req->version()));
    std::optional<absl::Duration> wait;
    if (req->wait_seconds() > 0) wait = absl::Seconds(req->wait_seconds());
    KW_ASSIGN_OR_RETURN(keystore::Key key,
                        core_->ScheduleVersionDestruction(
                            req->name(), req->version(), wait, req->force()));
    ToProto(key, resp);
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::GenerateDataKey(
    Ctx* ctx, const v1::GenerateDataKeyRequest* req,
    v1::GenerateDataKeyResponse* resp) {
  EncryptionContext context = FromProto(req->encryption_context());
  return Run(
      ctx, "GenerateDataKey", {"generate-data-key", req->key_name(), context},
      [&](Call& call) -> absl::Status {
        KW_ASSIGN_OR_RETURN(kms::DataKey dk,
                            core_->GenerateDataKey(req->key_name(), context));
        call.set_version(dk.key.key_version);
        resp->set_plaintext(dk.plaintext.data(), dk.plaintext.size());
        resp->set_wrapped(std::move(dk.wrapped));
        ToProto(dk.key, resp->mutable_key());
        return absl::OkStatus();
      },
      [resp] { Wipe(resp->mutable_plaintext()); });
}

KeyManagementService::Reactor* KeyManagementService::GenerateDataKeyWithoutPlaintext(
    Ctx* ctx, const v1::GenerateDataKeyRequest* req,
    v1::GenerateDataKeyResponse* resp) {
  EncryptionContext context = FromProto(req->encryption_context());
  return Run(ctx, "GenerateDataKeyWithoutPlaintext", {"generate-data-key", req->key_name(), context},
             [&](Call& call) -> absl::Status {
               KW_ASSIGN_OR_RETURN(kms::WrappedKey wk,
                                   core_->GenerateDataKeyWithoutPlaintext(
                                       req->key_name(), context));
               call.set_version(wk.key.key_version);
               resp->set_wrapped(std::move(wk.wrapped));
               ToProto(wk.key, resp->mutable_key());
               return absl::OkStatus();
             });
}

KeyManagementService::Reactor* KeyManagementService::DecryptDataKey(
    Ctx* ctx, const v1::DecryptDataKeyRequest* req,
    v1::DecryptDataKeyResponse* resp) {
  return Run(
      ctx, "DecryptDataKey", {"decrypt", "", {}},
      [&](Call& call) -> absl::Status {
        // The wrapped key names its key: decide before unwrapping anything.
        KW_ASSIGN_OR_RETURN(kms::DataKeyBlob blob, kms::DecodeBlob(req->wrapped()));
        const EncryptionContext context = FromProto(req->encryption_context());
        KW_RETURN_IF_ERROR(call.Authorize(blob.key_name, context, blob.key_version));
        if (req->for_reencryption()) call.set_detail("for re-encryption");
        KW_ASSIGN_OR_RETURN(SecretData dek,
                            core_->DecryptDataKey(req->wrapped(), context,
                                                  /*reader=*/!req->for_reencryption()));
        resp->set_plaintext(dek.data(), dek.size());
        return absl::OkStatus();
      },
      [resp] { Wipe(resp->mutable_plaintext()); });
}

KeyManagementService::Reactor* KeyManagementService::ReWrapDataKey(
    Ctx* ctx, const v1::ReWrapDataKeyRequest* req, v1::ReWrapDataKeyResponse* resp) {
  return Run(ctx, "ReWrapDataKey", {"rewrap", "", {}}, [&](Call& call) -> absl::Status {
    KW_ASSIGN_OR_RETURN(kms::DataKeyBlob blob, kms::DecodeBlob(req->wrapped()));
    const EncryptionContext context = FromProto(req->encryption_context());
    KW_RETURN_IF_ERROR(call.Authorize(blob.key_name, context, blob.key_version));
    KW_ASSIGN_OR_RETURN(kms::WrappedKey wk, core_->ReWrapDataKey(req->wrapped(), context));
    call.set_version(wk.key.key_version);
    resp->set_wrapped(std::move(wk.wrapped));
    ToProto(wk.key, resp->mutable_key());
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::BatchGenerateDataKeys(
    Ctx* ctx, const v1::BatchGenerateDataKeysRequest* req,
    v1::BatchGenerateDataKeysResponse* resp) {
  EncryptionContext context = FromProto(req->encryption_context());
  return Run(
      ctx, "BatchGenerateDataKeys", {"generate-data-key", req->key_name(), context},
      [&](Call& call) -> absl::Status {
        KW_ASSIGN_OR_RETURN(std::vector<kms::DataKey> keys,
                            core_->GenerateDataKeys(req->key_name(), context,
                                                    req->count()));
        if (!keys.empty()) call.set_version(keys.front().key.key_version);
        resp->mutable_data_keys()->Reserve(static_cast<int>(keys.size()));
        for (kms::DataKey& dk : keys) {
          v1::GenerateDataKeyResponse* out = resp->add_data_keys();
          out->set_plaintext(dk.plaintext.data(), dk.plaintext.size());
          out->set_wrapped(std::move(dk.wrapped));
          ToProto(dk.key, out->mutable_key());
        }
        return absl::OkStatus();
      },
      [resp] {
        for (auto& dk : *resp->mutable_data_keys()) Wipe(dk.mutable_plaintext());
      });
}

namespace {
void SetItemError(const absl::Status& status, v1::BatchDecryptResult* out) {
  out->set_code(static_cast<int>(status.code()));
  out->set_error(std::string(status.message()));
  const ErrorCode code = GetErrorCode(status);
  if (code != ErrorCode::kNone) out->set_error_code(std::string(ErrorCodeName(code)));
}
}  // namespace

KeyManagementService::Reactor* KeyManagementService::BatchDecryptDataKeys(
    Ctx* ctx, const v1::BatchDecryptDataKeysRequest* req,
    v1::BatchDecryptDataKeysResponse* resp) {
  return Run(
      ctx, "BatchDecryptDataKeys", {"decrypt", "", {}},
      [&](Call& call) -> absl::Status {
        // Each item is decided on its own; refused or malformed items get
        // their error, the rest are unwrapped together.
        const int n = req->requests_size();
        const bool reencrypting =
            n > 0 && std::all_of(req->requests().begin(), req->requests().end(),
                                 [](const auto& r) { return r.for_reencryption(); });
        std::vector<absl::Status> item_status(static_cast<size_t>(n));
        std::vector<kms::DecryptRequest> allowed;
        std::vector<int> allowed_index;
        std::set<std::string> keys;
        int denied = 0;
        policy::Decision last_allow, first_deny, previous;
        std::string previous_key;
        EncryptionContext previous_context;
        bool have_previous = false;
        for (int i = 0; i < n; ++i) {
          const auto& r = req->requests(i);
          auto blob = kms::DecodeBlob(r.wrapped());
          if (!blob.ok()) {
            item_status[static_cast<size_t>(i)] = blob.status();
            continue;
          }
          EncryptionContext context = FromProto(r.encryption_context());
          // Batches mostly repeat one key and context: decide once for a run
          // of equal items.
          const bool same = have_previous && blob->key_name == previous_key &&
                            context == previous_context;
          if (!same) {
            keys.insert(blob->key_name);
            previous = call.Check(blob->key_name, context);
            previous_key = blob->key_name;
            previous_context = context;
            have_previous = true;
          }
          const policy::Decision& d = previous;
          if (!d.allowed) {
            if (denied++ == 0) first_deny = d;
            item_status[static_cast<size_t>(i)] = MakeError(
                absl::StatusCode::kPermissionDenied, ErrorCode::kAccessDenied,
                absl::StrCat("access denied: ", d.reason));
            continue;
          }
          if (!same) last_allow = d;
          allowed.push_back({r.wrapped(), std::move(context)});
          allowed_index.push_back(i);
        }
        const bool any_allowed = !allowed.empty();
        call.SetBatchOutcome(
            absl::StrJoin(keys, ","), any_allowed || denied == 0 ? last_allow : first_deny,
            absl::StrCat(reencrypting ? "for re-encryption; " : "", "batch of ", n, ": ",
                         n - static_cast<int>(allowed.size()) - denied,
                         " malformed, ", denied, " denied",
                         denied > 0 ? absl::StrCat(" (", first_deny.reason, ")") : ""));
        std::vector<absl::StatusOr<SecretData>> results;
        if (any_allowed) {
          KW_ASSIGN_OR_RETURN(results, core_->DecryptDataKeys(allowed, !reencrypting));
        }
        resp->mutable_results()->Reserve(n);
        for (int i = 0; i < n; ++i) resp->add_results();
        for (size_t j = 0; j < results.size(); ++j) {
          v1::BatchDecryptResult* out = resp->mutable_results(allowed_index[j]);
          if (results[j].ok()) {
            out->set_plaintext(results[j]->data(), results[j]->size());
          } else {
            SetItemError(results[j].status(), out);
          }
        }
        for (int i = 0; i < n; ++i) {
          if (!item_status[static_cast<size_t>(i)].ok()) {
            SetItemError(item_status[static_cast<size_t>(i)], resp->mutable_results(i));
          }
        }
        return absl::OkStatus();
      },
      [resp] {
        for (auto& r : *resp->mutable_results()) Wipe(r.mutable_plaintext());
      });
}

namespace {
absl::StatusOr<format::Header> PeekHeader(absl::string_view bytes) {
  std::string authenticated;
  return format::ParseHeader(bytes, &authenticated);
}
}  // namespace

KeyManagementService::Reactor* KeyManagementService::Encrypt(
    Ctx* ctx, const v1::EncryptRequest* req, v1::EncryptResponse* resp) {
  EncryptionContext context = FromProto(req->encryption_context());
  return Run(ctx, "Encrypt", {"encrypt", req->key_name(), context}, [&](Call& call) -> absl::Status {
    KW_ASSIGN_OR_RETURN(std::string message,
                        core_->Encrypt(req->key_name(), req->plaintext(), context));
    if (auto header = PeekHeader(message); header.ok()) {
      call.set_version(header->key.key_version);
    }
    resp->set_message(std::move(message));
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::Decrypt(
    Ctx* ctx, const v1::DecryptRequest* req, v1::DecryptResponse* resp) {
  return Run(
      ctx, "Decrypt", {"decrypt", "", {}},
      [&](Call& call) -> absl::Status {
        // Decided on the header's key and (still unauthenticated) context:
        // if either was altered, decryption fails right after.
        KW_ASSIGN_OR_RETURN(format::Header header, PeekHeader(req->message()));
        KW_RETURN_IF_ERROR(call.Authorize(header.key.key_name, header.context,
                                          header.key.key_version));
        KW_ASSIGN_OR_RETURN(SecretData pt,
                            core_->Decrypt(req->message(),
                                           FromProto(req->encryption_context())));
        resp->set_plaintext(pt.data(), pt.size());
        return absl::OkStatus();
      },
      [resp] { Wipe(resp->mutable_plaintext()); });
}

KeyManagementService::Reactor* KeyManagementService::RewrapMessageHeader(
    Ctx* ctx, const v1::RewrapMessageHeaderRequest* req,
    v1::RewrapMessageHeaderResponse* resp) {
  return Run(ctx, "RewrapMessageHeader", {"rewrap", "", {}}, [&](Call& call) -> absl::Status {
    // The header names its key; rewrap to that key's primary version.
    KW_ASSIGN_OR_RETURN(format::Header header, PeekHeader(req->header()));
    KW_RETURN_IF_ERROR(call.Authorize(header.key.key_name, header.context,
                                      header.key.key_version));
    // Moving a message away from a version is not a read of it (the
    // retirement gate's quiet period).
    kms::LocalKmsKeyring from(core_, "", /*reader=*/false);
    kms::LocalKmsKeyring to(core_, header.key.key_name);
    const Keyring* from_list[] = {&from};
    const Keyring* to_list[] = {&to};
    DecryptOptions options;
    options.expected_context = FromProto(req->encryption_context());
    options.expected_environment = core_->environment();
    StringInputStream in(req->header());
    std::string out;
    StringOutputStream sink(&out);
    KW_RETURN_IF_ERROR(RewrapStream(in, sink, from_list, to_list, options));
    KW_ASSIGN_OR_RETURN(format::Header rewrapped, PeekHeader(out));
    call.set_version(rewrapped.key.key_version);
    ToProto(rewrapped.key, resp->mutable_key());
    resp->set_header(std::move(out));
    return absl::OkStatus();
  });
}

// --- Rotation --------------------------------------------------------------------

KeyManagementService::Reactor* KeyManagementService::BatchRewrapMessageHeaders(
    Ctx* ctx, const v1::BatchRewrapMessageHeadersRequest* req,
    v1::BatchRewrapMessageHeadersResponse* resp) {
  return Run(ctx, "BatchRewrapMessageHeaders", {"rewrap", "", {}}, [&](Call& call) -> absl::Status {
    const int n = req->headers_size();
    if (n < 1 || n > kms::KeyService::kMaxBatch) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a batch holds 1 to ", kms::KeyService::kMaxBatch, " headers, got ", n));
    }
    // Each header is decided on its own, on the key it names.
    std::vector<std::string> headers(req->headers().begin(), req->headers().end());
    std::vector<bool> skip(headers.size(), false);
    std::vector<absl::Status> refused(headers.size());
    std::set<std::string> keys;
    std::vector<std::string> header_keys(headers.size());
    int denied = 0;
    policy::Decision last_allow, first_deny;
    for (size_t i = 0; i < headers.size(); ++i) {
      auto h = PeekHeader(headers[i]);
      if (!h.ok()) continue;  // RewrapHeaders reports the parse error
      keys.insert(h->key.key_name);
      header_keys[i] = h->key.key_name;
      policy::Decision d = call.Check(h->key.key_name, h->context);
      if (d.allowed) {
        last_allow = d;
        continue;
      }
      if (denied++ == 0) first_deny = d;
      skip[i] = true;
      refused[i] = MakeError(absl::StatusCode::kPermissionDenied, ErrorCode::kAccessDenied,
                             absl::StrCat("access denied: ", d.reason));
    }
    auto results = kms::RewrapHeaders(core_, headers, skip, header_keys);
    int failed = 0;
    resp->mutable_results()->Reserve(n);
    for (size_t i = 0; i < results.size(); ++i) {
      v1::RewrapResult* out = resp->add_results();
      const absl::Status s = skip[i] ? refused[i] : results[i].status();
      if (s.ok()) {
        out->set_header(std::move(results[i]->header));
        ToProto(results[i]->key, out->mutable_key());
        continue;
      }
      if (!skip[i]) ++failed;
      out->set_code(static_cast<int>(s.code()));
      out->set_error(std::string(s.message()));
      const ErrorCode code = GetErrorCode(s);
      if (code != ErrorCode::kNone) out->set_error_code(std::string(ErrorCodeName(code)));
    }
    call.SetBatchOutcome(absl::StrJoin(keys, ","), denied < n ? last_allow : first_deny,
                         absl::StrCat("batch of ", n, ": ", failed, " failed, ", denied,
                                      " denied"));
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::ReportDataSet(
    Ctx* ctx, const v1::DataSetReport* req, v1::DataSetReport* resp) {
  return Run(ctx, "ReportDataSet", {"report-data-set", req->key_name(), {}}, [&](Call& call) -> absl::Status {
    keystore::DataSetReport r;
    r.data_set = req->data_set();
    r.key_name = req->key_name();
    for (const auto& [version, rows] : req->rows_per_version()) r.rows_per_version[version] = rows;
    r.rows_total = req->rows_total();
    r.reported_by = call.principal();
    call.set_detail(absl::StrCat("data set ", r.data_set.substr(0, 200), ": ", r.rows_total,
                                 " rows"));
    KW_RETURN_IF_ERROR(core_->ReportDataSet(r));
    *resp = *req;
    resp->set_reported_by(call.principal());
    resp->set_reported_unix_micros(absl::ToUnixMicros(absl::Now()));
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::ListDataSets(
    Ctx* ctx, const v1::ListDataSetsRequest* req, v1::ListDataSetsResponse* resp) {
  return Run(ctx, "ListDataSets", {"describe", req->key_name(), {}}, [&](Call&) -> absl::Status {
    KW_ASSIGN_OR_RETURN(auto reports, core_->ListDataSetReports(req->key_name()));
    for (const auto& r : reports) {
      v1::DataSetReport* out = resp->add_reports();
      out->set_data_set(r.data_set);
      out->set_key_name(r.key_name);
      for (const auto& [version, rows] : r.rows_per_version) {
        (*out->mutable_rows_per_version())[version] = rows;
      }
      out->set_rows_total(r.rows_total);
      out->set_reported_unix_micros(absl::ToUnixMicros(r.reported));
      out->set_reported_by(r.reported_by);
    }
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::GetDrillSamples(
    Ctx* ctx, const v1::GetDrillSamplesRequest* req, v1::GetDrillSamplesResponse* resp) {
  return Run(ctx, "GetDrillSamples", {"describe", req->key_name(), {}}, [&](Call&) -> absl::Status {
    KW_ASSIGN_OR_RETURN(keystore::Key key, core_->GetKey(req->key_name()));
    for (const keystore::KeyVersion& v : key.versions) {
      v1::DrillSample* out = resp->add_samples();
      out->set_version(v.version);
      out->set_state(std::string(keystore::VersionStateName(v.state)));
      out->set_message(v.drill_sample);
      out->set_expected_plaintext(kms::KeyService::DrillPlaintext(key.name, v.version));
    }
    return absl::OkStatus();
  });
}

// --- Access control ----------------------------------------------------------

namespace {
void ToProto(const policy::Grant& g, v1::Grant* out) {
  out->set_id(g.id);
  out->set_principal(g.principal);
  out->set_key_name(g.key);
  for (const auto& op : g.operations) out->add_operations(op);
  for (const auto& [k, v] : g.context) (*out->mutable_encryption_context())[k] = v;
  out->set_created_unix_micros(absl::ToUnixMicros(g.created));
  out->set_expires_unix_micros(absl::ToUnixMicros(g.expires));
  out->set_revoked_unix_micros(g.revoked ? absl::ToUnixMicros(*g.revoked) : 0);
  out->set_created_by(g.created_by);
  out->set_reason(g.reason);
}
}  // namespace

KeyManagementService::Reactor* KeyManagementService::GetPolicy(
    Ctx* ctx, const v1::GetPolicyRequest*, v1::PolicyDocument* resp) {
  return Run(ctx, "GetPolicy", {"manage-policy", "*", {}}, [&](Call&) {
    resp->set_yaml(deps_.access->PolicyText());
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::SetPolicy(
    Ctx* ctx, const v1::PolicyDocument* req, v1::PolicyDocument* resp) {
  return Run(ctx, "SetPolicy", {"manage-policy", "*", {}}, [&](Call&) -> absl::Status {
    KW_RETURN_IF_ERROR(deps_.access->SetPolicy(req->yaml()));
    resp->set_yaml(deps_.access->PolicyText());
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::TestPolicy(
    Ctx* ctx, const v1::TestPolicyRequest* req, v1::PolicyDecision* resp) {
  return Run(ctx, "TestPolicy", {"manage-policy", "*", {}}, [&](Call&) -> absl::Status {
    if (!policy::IsKnownOperation(req->operation())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown operation '", req->operation(), "' (see docs/policy.md)"));
    }
    const EncryptionContext context = FromProto(req->encryption_context());
    policy::Request r{req->principal(), req->operation(),
                      req->key_name().empty() ? "*" : req->key_name(), &context,
                      absl::Now()};
    const policy::Decision d = deps_.access->Decide(r);
    resp->set_allowed(d.allowed);
    resp->set_rule(d.rule);
    resp->set_reason(d.reason);
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::CreateGrant(
    Ctx* ctx, const v1::CreateGrantRequest* req, v1::Grant* resp) {
  return Run(ctx, "CreateGrant", {"manage-grants", req->key_name(), {}}, [&](Call& call) -> absl::Status {
    GrantRequest g;
    g.principal = req->principal();
    g.key = req->key_name();
    g.operations = {req->operations().begin(), req->operations().end()};
    g.context = FromProto(req->encryption_context());
    g.ttl = absl::Seconds(req->ttl_seconds());
    g.reason = req->reason();
    KW_ASSIGN_OR_RETURN(policy::Grant grant,
                        deps_.access->CreateGrant(g, call.principal()));
    ToProto(grant, resp);
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::ListGrants(
    Ctx* ctx, const v1::ListGrantsRequest* req, v1::ListGrantsResponse* resp) {
  return Run(ctx, "ListGrants", {"manage-grants", "*", {}}, [&](Call&) -> absl::Status {
    KW_ASSIGN_OR_RETURN(auto grants, deps_.access->ListGrants(req->include_inactive()));
    for (const auto& g : grants) ToProto(g, resp->add_grants());
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::RevokeGrant(
    Ctx* ctx, const v1::RevokeGrantRequest* req, v1::Grant* resp) {
  return Run(ctx, "RevokeGrant", {"manage-grants", "", {}}, [&](Call& call) -> absl::Status {
    KW_ASSIGN_OR_RETURN(policy::Grant existing, deps_.access->FindGrant(req->id()));
    KW_RETURN_IF_ERROR(call.Authorize(existing.key, {}));
    KW_ASSIGN_OR_RETURN(policy::Grant revoked, deps_.access->RevokeGrant(req->id()));
    ToProto(revoked, resp);
    return absl::OkStatus();
  });
}

// --- Audit ---------------------------------------------------------------------

namespace {
std::string HashBytes(const audit::Hash& h) { return std::string(h.begin(), h.end()); }
}  // namespace

KeyManagementService::Reactor* KeyManagementService::GetAuditCheckpoint(
    Ctx* ctx, const v1::GetAuditCheckpointRequest* req, v1::AuditCheckpoint* resp) {
  return Run(ctx, "GetAuditCheckpoint", {"read-audit", "*", {}}, [&](Call&) -> absl::Status {
    audit::Checkpoint c;
    if (req->fresh()) {
      KW_ASSIGN_OR_RETURN(c, deps_.audit->MakeCheckpoint());
    } else {
      KW_ASSIGN_OR_RETURN(c, deps_.audit->LatestCheckpoint());
    }
    resp->set_environment(c.environment);
    resp->set_tree_size(c.tree_size);
    resp->set_root_hash(HashBytes(c.root));
    resp->set_time_unix_micros(absl::ToUnixMicros(c.time));
    resp->set_key_fingerprint(c.key_fingerprint);
    resp->set_signature(c.signature);
    resp->set_line(c.line);
    resp->set_public_key_pem(deps_.audit->public_key_pem());
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::GetInclusionProof(
    Ctx* ctx, const v1::GetInclusionProofRequest* req, v1::InclusionProof* resp) {
  return Run(ctx, "GetInclusionProof", {"read-audit", "*", {}}, [&](Call&) -> absl::Status {
    uint64_t size = req->tree_size();
    if (size == 0) {
      KW_ASSIGN_OR_RETURN(audit::Checkpoint c, deps_.audit->LatestCheckpoint());
      size = c.tree_size;
    }
    KW_ASSIGN_OR_RETURN(auto path, deps_.audit->InclusionProof(req->index(), size));
    KW_ASSIGN_OR_RETURN(audit::Hash leaf, deps_.audit->LeafAt(req->index()));
    KW_ASSIGN_OR_RETURN(audit::Hash root, deps_.audit->Root(size));
    resp->set_index(req->index());
    resp->set_tree_size(size);
    resp->set_leaf_hash(HashBytes(leaf));
    for (const auto& h : path) resp->add_path(HashBytes(h));
    resp->set_root_hash(HashBytes(root));
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::GetConsistencyProof(
    Ctx* ctx, const v1::GetConsistencyProofRequest* req, v1::ConsistencyProof* resp) {
  return Run(ctx, "GetConsistencyProof", {"read-audit", "*", {}}, [&](Call&) -> absl::Status {
    uint64_t to = req->to_size();
    if (to == 0) {
      KW_ASSIGN_OR_RETURN(audit::Checkpoint c, deps_.audit->LatestCheckpoint());
      to = c.tree_size;
    }
    KW_ASSIGN_OR_RETURN(auto path, deps_.audit->ConsistencyProof(req->from_size(), to));
    KW_ASSIGN_OR_RETURN(audit::Hash from_root, deps_.audit->Root(req->from_size()));
    KW_ASSIGN_OR_RETURN(audit::Hash to_root, deps_.audit->Root(to));
    resp->set_from_size(req->from_size());
    resp->set_to_size(to);
    for (const auto& h : path) resp->add_path(HashBytes(h));
    resp->set_from_root(HashBytes(from_root));
    resp->set_to_root(HashBytes(to_root));
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::ReadAuditRecords(
    Ctx* ctx, const v1::ReadAuditRecordsRequest* req, v1::ReadAuditRecordsResponse* resp) {
  return Run(ctx, "ReadAuditRecords", {"read-audit", "*", {}}, [&](Call&) -> absl::Status {
    if (req->limit() < 0 || req->limit() > 10000) {
      return absl::InvalidArgumentError("limit must be between 1 and 10000");
    }
    const size_t limit = req->limit() == 0 ? 1000 : static_cast<size_t>(req->limit());
    audit::RecordFilter filter;
    if (req->since_unix_micros() != 0) filter.since = absl::FromUnixMicros(req->since_unix_micros());
    if (req->until_unix_micros() != 0) filter.until = absl::FromUnixMicros(req->until_unix_micros());
    filter.principal = req->principal();
    filter.key = req->key_name();
    filter.operation = req->operation();
    filter.decision = req->decision();
    filter.context = HashContext(FromProto(req->encryption_context()));
    const uint64_t size = deps_.audit->size();
    uint64_t from = req->from_index();
    if (req->from_end()) from = size > limit ? size - limit : 0;
    uint64_t next = 0;
    KW_ASSIGN_OR_RETURN(auto records, deps_.audit->Read(from, limit, filter, &next));
    for (auto& r : records) resp->add_records(std::move(r));
    resp->set_next_index(next);
    resp->set_size(size);
    return absl::OkStatus();
  });
}

}  // namespace keyward::server
