// keywardd's method table: each keyward.proto method registered raw with
// its policy operation, its handler and how to wipe a secret reply.
#include <cstdio>
#include <cstdlib>

#include "metrics/metrics.h"
#include "server/byte_buffers.h"
#include "server/key_management_service.h"

namespace keyward::server {

using google::protobuf::Message;

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

KeyManagementService::KeyManagementService(const ServiceDeps& deps)
    : deps_(deps),
      core_(deps.core),
      refusals_(deps.audit, deps.refusals),
      tarpit_(deps.tarpit),
      breakglass_sweeper_(deps.access, deps.audit, absl::Seconds(1)),
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
  Register("CompromiseVersion", "compromise-key", &K::CompromiseVersion);
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
  Register("EraseTenant", "erase-tenant", &K::EraseTenant);
  Register("GetPolicy", "manage-policy", &K::GetPolicy);
  Register("SetPolicy", "manage-policy", &K::SetPolicy);
  Register("TestPolicy", "manage-policy", &K::TestPolicy);
  Register("CreateGrant", "manage-grants", &K::CreateGrant);
  Register("ListGrants", "manage-grants", &K::ListGrants);
  Register("RevokeGrant", "manage-grants", &K::RevokeGrant);
  // Decided by the policy's breakglass section, not by rules on these names.
  Register("RequestBreakGlass", "breakglass-request", &K::RequestBreakGlass);
  Register("ApproveBreakGlass", "breakglass-approve", &K::ApproveBreakGlass);
  Register("GetBreakGlass", "breakglass-read", &K::GetBreakGlass);
  Register("ListBreakGlass", "breakglass-read", &K::ListBreakGlass);
  Register("RevokeBreakGlass", "breakglass-revoke", &K::RevokeBreakGlass);
  Register("GetAuditCheckpoint", "read-audit", &K::GetAuditCheckpoint);
  Register("GetInclusionProof", "read-audit", &K::GetInclusionProof);
  Register("GetConsistencyProof", "read-audit", &K::GetConsistencyProof);
  Register("ReadAuditRecords", "read-audit", &K::ReadAuditRecords);
  Register("ListAuditSegments", "read-audit", &K::ListAuditSegments);
  Register("PruneAuditLog", "manage-audit", &K::PruneAuditLog);
  // One key each, no batch, no wait on the audit log before the answer.
  for (const auto& m : methods_) {
    m->light = m->name == "GetServerInfo" || m->name == "GenerateDataKey" ||
               m->name == "GenerateDataKeyWithoutPlaintext" || m->name == "DecryptDataKey" ||
               m->name == "ReWrapDataKey";
  }
  RegisterCompromiseMetrics();
  const int methods = v1::GetServerInfoRequest::descriptor()
                          ->file()
                          ->FindServiceByName("KeyManagement")
                          ->method_count();
  if (static_cast<int>(methods_.size()) != methods) {
    std::fprintf(stderr, "keywardd: %d methods in keyward.proto, %zu handlers\n", methods,
                 methods_.size());
    std::abort();
  }
  breakglass_sweeper_.Start();
}

KeyManagementService::~KeyManagementService() {
  breakglass_sweeper_.Stop();
  metrics::Global().RemoveCollector(kCompromisedVersionsMetric);
}

}  // namespace keyward::server
