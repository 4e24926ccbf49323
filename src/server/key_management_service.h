// The gRPC face of the KMS core: thin, final handlers on gRPC's callback
// API.  Every call goes the same way (Run): check limits, identify the
// caller, ask AccessControl, call kms::KeyService, write the audit record and
// wait until it is durable, then answer (server/grpc_status.h maps errors).
// If the record cannot be made durable the caller gets UNAVAILABLE and no
// result.  No key logic lives here.
#ifndef KEYWARD_SERVER_KEY_MANAGEMENT_SERVICE_H_
#define KEYWARD_SERVER_KEY_MANAGEMENT_SERVICE_H_

#include <atomic>
#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "audit/audit_log.h"
#include "crypto/hmac.h"
#include "keyward/v1/keyward.grpc.pb.h"
#include "kms/key_service.h"
#include "server/access_control.h"

namespace keyward::server {

class Call;

struct ServiceDeps {
  kms::KeyService* core = nullptr;
  AccessControl* access = nullptr;
  audit::AuditLog* audit = nullptr;
  // Keyed hash for encryption context values in audit records.
  const crypto::HmacSha256* context_hmac = nullptr;
  int max_concurrent_requests = 1024;
};

// "hmac:<32 hex>": how an encryption context value appears in audit records.
std::string HashContextValue(const crypto::HmacSha256& hmac, absl::string_view key,
                             absl::string_view value);

class KeyManagementService final : public v1::KeyManagement::CallbackService {
 public:
  explicit KeyManagementService(const ServiceDeps& deps)
      : deps_(deps), core_(deps.core), max_in_flight_(deps.max_concurrent_requests) {}

  using Ctx = grpc::CallbackServerContext;
  using Reactor = grpc::ServerUnaryReactor;

  Reactor* GetServerInfo(Ctx*, const v1::GetServerInfoRequest*, v1::ServerInfo*) override;
  Reactor* CreateKey(Ctx*, const v1::CreateKeyRequest*, v1::Key*) override;
  Reactor* GetKey(Ctx*, const v1::GetKeyRequest*, v1::Key*) override;
  Reactor* ListKeys(Ctx*, const v1::ListKeysRequest*, v1::ListKeysResponse*) override;
  Reactor* RotateKey(Ctx*, const v1::RotateKeyRequest*, v1::Key*) override;
  Reactor* UpdateKey(Ctx*, const v1::UpdateKeyRequest*, v1::Key*) override;
  Reactor* EnableVersion(Ctx*, const v1::VersionRequest*, v1::Key*) override;
  Reactor* DisableVersion(Ctx*, const v1::VersionRequest*, v1::Key*) override;
  Reactor* SetPrimaryVersion(Ctx*, const v1::VersionRequest*, v1::Key*) override;
  Reactor* ScheduleVersionDestruction(Ctx*, const v1::ScheduleVersionDestructionRequest*,
                                      v1::Key*) override;
  Reactor* CancelVersionDestruction(Ctx*, const v1::VersionRequest*, v1::Key*) override;
  Reactor* GenerateDataKey(Ctx*, const v1::GenerateDataKeyRequest*,
                           v1::GenerateDataKeyResponse*) override;
  Reactor* GenerateDataKeyWithoutPlaintext(Ctx*, const v1::GenerateDataKeyRequest*,
                                           v1::GenerateDataKeyResponse*) override;
  Reactor* DecryptDataKey(Ctx*, const v1::DecryptDataKeyRequest*,
                          v1::DecryptDataKeyResponse*) override;
  Reactor* ReWrapDataKey(Ctx*, const v1::ReWrapDataKeyRequest*,
                         v1::ReWrapDataKeyResponse*) override;
  Reactor* BatchGenerateDataKeys(Ctx*, const v1::BatchGenerateDataKeysRequest*,
                                 v1::BatchGenerateDataKeysResponse*) override;
  Reactor* BatchDecryptDataKeys(Ctx*, const v1::BatchDecryptDataKeysRequest*,
                                v1::BatchDecryptDataKeysResponse*) override;
  Reactor* Encrypt(Ctx*, const v1::EncryptRequest*, v1::EncryptResponse*) override;
  Reactor* Decrypt(Ctx*, const v1::DecryptRequest*, v1::DecryptResponse*) override;
  Reactor* RewrapMessageHeader(Ctx*, const v1::RewrapMessageHeaderRequest*,
                               v1::RewrapMessageHeaderResponse*) override;

  Reactor* BatchRewrapMessageHeaders(Ctx*, const v1::BatchRewrapMessageHeadersRequest*,
                                     v1::BatchRewrapMessageHeadersResponse*) override;
  Reactor* ReportDataSet(Ctx*, const v1::DataSetReport*, v1::DataSetReport*) override;
  Reactor* ListDataSets(Ctx*, const v1::ListDataSetsRequest*,
                        v1::ListDataSetsResponse*) override;
  Reactor* GetDrillSamples(Ctx*, const v1::GetDrillSamplesRequest*,
                           v1::GetDrillSamplesResponse*) override;
  Reactor* GetPolicy(Ctx*, const v1::GetPolicyRequest*, v1::PolicyDocument*) override;
  Reactor* SetPolicy(Ctx*, const v1::PolicyDocument*, v1::PolicyDocument*) override;
  Reactor* TestPolicy(Ctx*, const v1::TestPolicyRequest*, v1::PolicyDecision*) override;
  Reactor* CreateGrant(Ctx*, const v1::CreateGrantRequest*, v1::Grant*) override;
  Reactor* ListGrants(Ctx*, const v1::ListGrantsRequest*, v1::ListGrantsResponse*) override;
  Reactor* RevokeGrant(Ctx*, const v1::RevokeGrantRequest*, v1::Grant*) override;
  Reactor* GetAuditCheckpoint(Ctx*, const v1::GetAuditCheckpointRequest*,
                              v1::AuditCheckpoint*) override;
  Reactor* GetInclusionProof(Ctx*, const v1::GetInclusionProofRequest*,
                             v1::InclusionProof*) override;
  Reactor* GetConsistencyProof(Ctx*, const v1::GetConsistencyProofRequest*,
                               v1::ConsistencyProof*) override;
  Reactor* ReadAuditRecords(Ctx*, const v1::ReadAuditRecordsRequest*,
                            v1::ReadAuditRecordsResponse*) override;

  int in_flight() const { return in_flight_.load(); }

 private:
  // What a call is checked against before its handler runs.  `key` empty:
  // the handler finds the key in the request (a wrapped key or a message
  // header) and calls Call::Authorize itself before touching it.
  struct Target {
    const char* operation;
    std::string key;
    EncryptionContext context;
  };
  // Runs `handler` for the call, records it, and finishes it.  `wipe`, when
  // set, erases secret fields of the response once gRPC is done with it.
  Reactor* Run(Ctx* ctx, const char* method, Target target, const std::function<absl::Status(Call&)>& handler,
               std::function<void()> wipe = nullptr);
  // The encryption context as audit records show it.
  std::map<std::string, std::string> HashContext(const EncryptionContext& context) const;

  friend class Call;
  const ServiceDeps deps_;
  kms::KeyService* const core_;
  const int max_in_flight_;
  std::atomic<int> in_flight_{0};
};

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_KEY_MANAGEMENT_SERVICE_H_
