#include "server/key_management_service.h"

#include <openssl/crypto.h>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "format/header.h"
#include "keyward/errors.h"
#include "keyward/message.h"
#include "keyward/version.h"
#include "kms/kms_keyring.h"
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

}  // namespace

KeyManagementService::Reactor* KeyManagementService::Run(
    Ctx* ctx, const std::function<absl::Status(const std::string&)>& handler,
    std::function<void()> wipe) {
  absl::Status status;
  const int now = in_flight_.fetch_add(1) + 1;
  if (now > max_in_flight_) {
    status = absl::ResourceExhaustedError(absl::StrCat(
        "keywardd is at its limit of ", max_in_flight_,
        " concurrent requests; retry with backoff"));
  } else {
    auto principal = PrincipalFromAuthContext(*ctx->auth_context());
    status = principal.ok() ? handler(*principal) : principal.status();
  }
  in_flight_.fetch_sub(1);
  Reactor* reactor = wipe ? new WipingReactor(std::move(wipe)) : ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status, ctx));
  return reactor;
}

KeyManagementService::Reactor* KeyManagementService::GetServerInfo(
    Ctx* ctx, const v1::GetServerInfoRequest*, v1::ServerInfo* resp) {
  return Run(ctx, [&](const std::string& principal) {
    const hsm::HsmInfo hsm = core_->hsm_info();
    resp->set_environment(core_->environment());
    resp->set_version(kVersion);
    resp->add_suites(std::string(SuiteName(Suite::kAes256GcmHkdfSha256Commit)));
    resp->add_suites(
        std::string(SuiteName(Suite::kChaCha20Poly1305HkdfSha256Commit)));
    resp->set_hsm(absl::StrCat(hsm.token_label, " (", hsm.manufacturer, " ",
                               hsm.model, ")"));
    resp->set_hsm_software(hsm.software);
    resp->set_principal(principal);
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::CreateKey(
    Ctx* ctx, const v1::CreateKeyRequest* req, v1::Key* resp) {
  return Run(ctx, [&](const std::string&) -> absl::Status {
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
  return Run(ctx, [&](const std::string&) -> absl::Status {
    KW_ASSIGN_OR_RETURN(keystore::Key key, core_->GetKey(req->name()));
    ToProto(key, resp);
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::ListKeys(
    Ctx* ctx, const v1::ListKeysRequest* req, v1::ListKeysResponse* resp) {
  return Run(ctx, [&](const std::string&) -> absl::Status {
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
  return Run(ctx, [&](const std::string&) -> absl::Status {
    KW_ASSIGN_OR_RETURN(keystore::Key key, core_->RotateKey(req->name()));
    ToProto(key, resp);
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::UpdateKey(
    Ctx* ctx, const v1::UpdateKeyRequest* req, v1::Key* resp) {
  return Run(ctx, [&](const std::string&) -> absl::Status {
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

#define KW_VERSION_HANDLER(Method)                                        \
  KeyManagementService::Reactor* KeyManagementService::Method(           \
      Ctx* ctx, const v1::VersionRequest* req, v1::Key* resp) {          \
    return Run(ctx, [&](const std::string&) -> absl::Status {            \
      KW_ASSIGN_OR_RETURN(keystore::Key key,                             \
                          core_->Method(req->name(), req->version()));   \
      ToProto(key, resp);                                                 \
      return absl::OkStatus();                                            \
    });                                                                   \
  }
KW_VERSION_HANDLER(EnableVersion)
KW_VERSION_HANDLER(DisableVersion)
KW_VERSION_HANDLER(SetPrimaryVersion)
KW_VERSION_HANDLER(CancelVersionDestruction)
#undef KW_VERSION_HANDLER

KeyManagementService::Reactor* KeyManagementService::ScheduleVersionDestruction(
    Ctx* ctx, const v1::ScheduleVersionDestructionRequest* req, v1::Key* resp) {
  return Run(ctx, [&](const std::string&) -> absl::Status {
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
  return Run(
      ctx,
      [&](const std::string&) -> absl::Status {
        KW_ASSIGN_OR_RETURN(kms::DataKey dk,
                            core_->GenerateDataKey(req->key_name(),
                                                   FromProto(req->encryption_context())));
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
  return Run(ctx, [&](const std::string&) -> absl::Status {
    KW_ASSIGN_OR_RETURN(kms::WrappedKey wk,
                        core_->GenerateDataKeyWithoutPlaintext(
                            req->key_name(), FromProto(req->encryption_context())));
    resp->set_wrapped(std::move(wk.wrapped));
    ToProto(wk.key, resp->mutable_key());
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::DecryptDataKey(
    Ctx* ctx, const v1::DecryptDataKeyRequest* req,
    v1::DecryptDataKeyResponse* resp) {
  return Run(
      ctx,
      [&](const std::string&) -> absl::Status {
        KW_ASSIGN_OR_RETURN(SecretData dek,
                            core_->DecryptDataKey(req->wrapped(),
                                                  FromProto(req->encryption_context())));
        resp->set_plaintext(dek.data(), dek.size());
        return absl::OkStatus();
      },
      [resp] { Wipe(resp->mutable_plaintext()); });
}

KeyManagementService::Reactor* KeyManagementService::ReWrapDataKey(
    Ctx* ctx, const v1::ReWrapDataKeyRequest* req, v1::ReWrapDataKeyResponse* resp) {
  return Run(ctx, [&](const std::string&) -> absl::Status {
    KW_ASSIGN_OR_RETURN(kms::WrappedKey wk,
                        core_->ReWrapDataKey(req->wrapped(),
                                             FromProto(req->encryption_context())));
    resp->set_wrapped(std::move(wk.wrapped));
    ToProto(wk.key, resp->mutable_key());
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::BatchGenerateDataKeys(
    Ctx* ctx, const v1::BatchGenerateDataKeysRequest* req,
    v1::BatchGenerateDataKeysResponse* resp) {
  return Run(
      ctx,
      [&](const std::string&) -> absl::Status {
        KW_ASSIGN_OR_RETURN(std::vector<kms::DataKey> keys,
                            core_->GenerateDataKeys(req->key_name(),
                                                    FromProto(req->encryption_context()),
                                                    req->count()));
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

KeyManagementService::Reactor* KeyManagementService::BatchDecryptDataKeys(
    Ctx* ctx, const v1::BatchDecryptDataKeysRequest* req,
    v1::BatchDecryptDataKeysResponse* resp) {
  return Run(
      ctx,
      [&](const std::string&) -> absl::Status {
        std::vector<kms::DecryptRequest> requests;
        requests.reserve(static_cast<size_t>(req->requests_size()));
        for (const auto& r : req->requests()) {
          requests.push_back({r.wrapped(), FromProto(r.encryption_context())});
        }
        KW_ASSIGN_OR_RETURN(auto results, core_->DecryptDataKeys(requests));
        resp->mutable_results()->Reserve(static_cast<int>(results.size()));
        for (auto& r : results) {
          v1::BatchDecryptResult* out = resp->add_results();
          if (r.ok()) {
            out->set_plaintext(r->data(), r->size());
          } else {
            out->set_code(static_cast<int>(r.status().code()));
            out->set_error(std::string(r.status().message()));
            const ErrorCode code = GetErrorCode(r.status());
            if (code != ErrorCode::kNone) {
              out->set_error_code(std::string(ErrorCodeName(code)));
            }
          }
        }
        return absl::OkStatus();
      },
      [resp] {
        for (auto& r : *resp->mutable_results()) Wipe(r.mutable_plaintext());
      });
}

KeyManagementService::Reactor* KeyManagementService::Encrypt(
    Ctx* ctx, const v1::EncryptRequest* req, v1::EncryptResponse* resp) {
  return Run(ctx, [&](const std::string&) -> absl::Status {
    KW_ASSIGN_OR_RETURN(std::string message,
                        core_->Encrypt(req->key_name(), req->plaintext(),
                                       FromProto(req->encryption_context())));
    resp->set_message(std::move(message));
    return absl::OkStatus();
  });
}

KeyManagementService::Reactor* KeyManagementService::Decrypt(
    Ctx* ctx, const v1::DecryptRequest* req, v1::DecryptResponse* resp) {
  return Run(
      ctx,
      [&](const std::string&) -> absl::Status {
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
  return Run(ctx, [&](const std::string&) -> absl::Status {
    // The header names its key; rewrap to that key's primary version.
    StringInputStream peek(req->header());
    std::string authenticated;
    KW_ASSIGN_OR_RETURN(format::Header header,
                        format::ReadHeader(peek, &authenticated));
    kms::LocalKmsKeyring from(core_, "");
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
    StringInputStream again(out);
    std::string unused;
    KW_ASSIGN_OR_RETURN(format::Header rewrapped, format::ReadHeader(again, &unused));
    ToProto(rewrapped.key, resp->mutable_key());
    resp->set_header(std::move(out));
    return absl::OkStatus();
  });
}

}  // namespace keyward::server
