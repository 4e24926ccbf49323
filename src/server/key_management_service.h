// The gRPC face of the KMS core.  Every method is registered raw (its
// request arrives as bytes), so that one pipeline (server/call.h) can admit
// the caller and check sizes and counts before anything is parsed; the
// handlers below then get typed requests, authorize through the Call on the
// key they act on, and call kms::KeyService.  If the audit record cannot be
// made durable the caller gets UNAVAILABLE and no result.
//
// The pipeline is in key_management_service.cc, the method table in
// method_table.cc; the handlers are grouped by area in handlers_*.cc, with
// authorization in call.cc, batch calls' shared shape in batch_items.h,
// audit record helpers in audit_records.cc and the checks of a message
// header before authorization in message_headers.h.
#ifndef KEYWARD_SERVER_KEY_MANAGEMENT_SERVICE_H_
#define KEYWARD_SERVER_KEY_MANAGEMENT_SERVICE_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "audit/audit_log.h"
#include "crypto/hmac.h"
#include "keyward/v1/keyward.grpc.pb.h"
#include "kms/key_service.h"
#include "server/access_control.h"
#include "server/breakglass_sweeper.h"
#include "server/call.h"
#include "server/fair_scheduler.h"
#include "server/refusal_audit.h"
#include "server/request_limits.h"
#include "server/tarpit.h"

namespace keyward::server {

struct ServiceDeps {
  kms::KeyService* core = nullptr;
  AccessControl* access = nullptr;
  audit::AuditLog* audit = nullptr;
  // Keyed hash for encryption context values in audit records.
  const crypto::HmacSha256* context_hmac = nullptr;
  FairSchedulerOptions scheduling;
  WireLimits wire;
  RefusalAuditOptions refusals;
  TarpitOptions tarpit;
  // Larger requests are refused (audited) before anything else; gRPC
  // itself refuses, unaudited, those over twice this size.
  size_t max_request_bytes = 4 << 20;
  // Replies larger than this are refused (kResourceExhausted); listings
  // stop early and say where to continue instead.
  size_t max_reply_bytes = 8 << 20;
  // The audit checkpoint key's fingerprint, for GetServerInfo.
  std::string checkpoint_key_fingerprint;
};

class KeyManagementService final : public v1::KeyManagement::CallbackService {
 public:
  explicit KeyManagementService(const ServiceDeps& deps);
  ~KeyManagementService() override;

  const FairScheduler& scheduler() const { return scheduler_; }
  RefusalAudit& refusals() { return refusals_; }
  // Records a call that never reached a method: an unknown method name, a
  // failed TLS handshake (server/unknown_method.h, handshake_audit.h).
  void AuditRefusal(const std::string& source, const std::string& peer,
                    const char* operation, const absl::Status& status, std::string detail,
                    std::function<void()> done);

  // --- Handlers.  Each authorizes through `call` before acting.
  using S = absl::Status;
  S GetServerInfo(Call&, const v1::GetServerInfoRequest&, v1::ServerInfo*);
  // Keys and versions (handlers_keys.cc).
  S CreateKey(Call&, const v1::CreateKeyRequest&, v1::Key*);
  S GetKey(Call&, const v1::GetKeyRequest&, v1::Key*);
  S ListKeys(Call&, const v1::ListKeysRequest&, v1::ListKeysResponse*);
  S RotateKey(Call&, const v1::RotateKeyRequest&, v1::Key*);
  S UpdateKey(Call&, const v1::UpdateKeyRequest&, v1::Key*);
  S EnableVersion(Call&, const v1::VersionRequest&, v1::Key*);
  S DisableVersion(Call&, const v1::VersionRequest&, v1::Key*);
  S SetPrimaryVersion(Call&, const v1::VersionRequest&, v1::Key*);
  S ScheduleVersionDestruction(Call&, const v1::ScheduleVersionDestructionRequest&, v1::Key*);
  S CancelVersionDestruction(Call&, const v1::VersionRequest&, v1::Key*);
  S CompromiseVersion(Call&, const v1::CompromiseVersionRequest&,
                      v1::CompromiseVersionResponse*);
  // Data keys and small payloads (handlers_data_keys.cc).
  S GenerateDataKey(Call&, const v1::GenerateDataKeyRequest&, v1::GenerateDataKeyResponse*);
  S GenerateDataKeyWithoutPlaintext(Call&, const v1::GenerateDataKeyRequest&,
                                    v1::GenerateDataKeyResponse*);
  S DecryptDataKey(Call&, const v1::DecryptDataKeyRequest&, v1::DecryptDataKeyResponse*);
  S ReWrapDataKey(Call&, const v1::ReWrapDataKeyRequest&, v1::ReWrapDataKeyResponse*);
  S BatchGenerateDataKeys(Call&, const v1::BatchGenerateDataKeysRequest&,
                          v1::BatchGenerateDataKeysResponse*);
  S BatchDecryptDataKeys(Call&, const v1::BatchDecryptDataKeysRequest&,
                         v1::BatchDecryptDataKeysResponse*);
  S Encrypt(Call&, const v1::EncryptRequest&, v1::EncryptResponse*);
  S Decrypt(Call&, const v1::DecryptRequest&, v1::DecryptResponse*);
  // Rotation and re-encryption (handlers_rotation.cc).
  S RewrapMessageHeader(Call&, const v1::RewrapMessageHeaderRequest&,
                        v1::RewrapMessageHeaderResponse*);
  S BatchRewrapMessageHeaders(Call&, const v1::BatchRewrapMessageHeadersRequest&,
                              v1::BatchRewrapMessageHeadersResponse*);
  S ReportDataSet(Call&, const v1::DataSetReport&, v1::DataSetReport*);
  S ListDataSets(Call&, const v1::ListDataSetsRequest&, v1::ListDataSetsResponse*);
  S GetDrillSamples(Call&, const v1::GetDrillSamplesRequest&, v1::GetDrillSamplesResponse*);
  // Tenant erasure (handlers_tenants.cc).
  S EraseTenant(Call&, const v1::EraseTenantRequest&, v1::TenantErasure*);
  // Access control (handlers_access.cc).
  S GetPolicy(Call&, const v1::GetPolicyRequest&, v1::PolicyDocument*);
  S SetPolicy(Call&, const v1::PolicyDocument&, v1::PolicyDocument*);
  S TestPolicy(Call&, const v1::TestPolicyRequest&, v1::PolicyDecision*);
  S CreateGrant(Call&, const v1::CreateGrantRequest&, v1::Grant*);
  S ListGrants(Call&, const v1::ListGrantsRequest&, v1::ListGrantsResponse*);
  S RevokeGrant(Call&, const v1::RevokeGrantRequest&, v1::Grant*);
  // Break-glass grants (handlers_breakglass.cc).
  S RequestBreakGlass(Call&, const v1::RequestBreakGlassRequest&, v1::BreakGlassGrant*);
  S ApproveBreakGlass(Call&, const v1::BreakGlassIdRequest&, v1::BreakGlassGrant*);
  S GetBreakGlass(Call&, const v1::BreakGlassIdRequest&, v1::BreakGlassGrant*);
  S ListBreakGlass(Call&, const v1::ListBreakGlassRequest&, v1::ListBreakGlassResponse*);
  S RevokeBreakGlass(Call&, const v1::BreakGlassIdRequest&, v1::BreakGlassGrant*);
  // The audit log (handlers_audit.cc).
  S GetAuditCheckpoint(Call&, const v1::GetAuditCheckpointRequest&, v1::AuditCheckpoint*);
  S GetInclusionProof(Call&, const v1::GetInclusionProofRequest&, v1::InclusionProof*);
  S GetConsistencyProof(Call&, const v1::GetConsistencyProofRequest&, v1::ConsistencyProof*);
  S ReadAuditRecords(Call&, const v1::ReadAuditRecordsRequest&, v1::ReadAuditRecordsResponse*);
  S ListAuditSegments(Call&, const v1::ListAuditSegmentsRequest&,
                      v1::ListAuditSegmentsResponse*);
  S PruneAuditLog(Call&, const v1::PruneAuditLogRequest&, v1::PruneAuditLogResponse*);

 private:
  friend class Call;
  friend class CallState;
  struct Method {
    std::string name;
    const char* operation;  // policy and audit operation
    const google::protobuf::Message* request_prototype;
    const google::protobuf::Message* response_prototype;
    std::function<absl::Status(Call&, const google::protobuf::Message&,
                               google::protobuf::Message*)>
        invoke;
    // Erases secret fields of the response once it is serialized.
    std::function<void(google::protobuf::Message*)> wipe;
    // Short and bounded (one data key): with a slot free, it runs on the
    // gRPC thread that read it rather than being handed to a worker.
    bool light = false;
  };
  // The keyward_compromised_versions gauge (handlers_keys.cc), removed
  // again with the service.
  static constexpr char kCompromisedVersionsMetric[] = "keyward_compromised_versions";
  void RegisterCompromiseMetrics();
  template <typename Req, typename Resp>
  void Register(const char* name, const char* operation,
                absl::Status (KeyManagementService::*handler)(Call&, const Req&, Resp*),
                std::function<void(Resp*)> wipe = nullptr);
  grpc::ServerUnaryReactor* Dispatch(const Method& method, grpc::CallbackServerContext* ctx,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response);
  // The encryption context as audit records show it (audit_records.cc).
  std::map<std::string, std::string> HashContext(const EncryptionContext& context) const;

  const ServiceDeps deps_;
  kms::KeyService* const core_;
  std::vector<std::unique_ptr<Method>> methods_;
  RefusalAudit refusals_;
  Tarpit tarpit_;
  // Ends break-glass grants on time (their end records, the gauge).
  BreakGlassSweeper breakglass_sweeper_;
  // Last: destroyed first, its destructor runs the tasks still queued,
  // which use everything above.
  FairScheduler scheduler_;
};

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_KEY_MANAGEMENT_SERVICE_H_
