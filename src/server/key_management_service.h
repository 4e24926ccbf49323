// The gRPC face of the KMS core: thin, final handlers on gRPC's callback
// API that check limits, identify the caller, call kms::KeyService and map
// the result (server/grpc_status.h).  No key logic lives here.
#ifndef KEYWARD_SERVER_KEY_MANAGEMENT_SERVICE_H_
#define KEYWARD_SERVER_KEY_MANAGEMENT_SERVICE_H_

#include <atomic>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "keyward/v1/keyward.grpc.pb.h"
#include "kms/key_service.h"

namespace keyward::server {

class KeyManagementService final : public v1::KeyManagement::CallbackService {
 public:
  KeyManagementService(kms::KeyService* core, int max_concurrent_requests)
      : core_(core), max_in_flight_(max_concurrent_requests) {}

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

  int in_flight() const { return in_flight_.load(); }

 private:
  // Runs `handler` for the call and finishes it.  `wipe`, when set, erases
  // secret fields of the response once gRPC is done with it.
  Reactor* Run(Ctx* ctx, const std::function<absl::Status(const std::string&)>& handler,
               std::function<void()> wipe = nullptr);

  kms::KeyService* const core_;
  const int max_in_flight_;
  std::atomic<int> in_flight_{0};
};

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_KEY_MANAGEMENT_SERVICE_H_
