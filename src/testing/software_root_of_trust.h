// A RootOfTrust in process memory, for unit tests of the layers above only.
// It is not reachable from any configuration: keywardd always uses PKCS#11.
#ifndef KEYWARD_TESTING_SOFTWARE_ROOT_OF_TRUST_H_
#define KEYWARD_TESTING_SOFTWARE_ROOT_OF_TRUST_H_

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "crypto/aead.h"
#include "hsm/root_of_trust.h"

namespace keyward::hsm::testing {

class SoftwareRootOfTrust final : public RootOfTrust {
 public:
  SoftwareRootOfTrust();
  HsmInfo Info() const override;
  absl::StatusOr<SecretData> GenerateRandom(size_t size) override;
  absl::StatusOr<std::string> Seal(const SecretData& material,
                                   absl::string_view aad) override;
  absl::StatusOr<SecretData> Unseal(absl::string_view sealed,
                                    absl::string_view aad) override;
  absl::StatusOr<std::string> CreateResidentKey(absl::string_view label) override;
  absl::StatusOr<std::string> ResidentSeal(absl::string_view key_id,
                                           const SecretData& material,
                                           absl::string_view aad) override;
  absl::StatusOr<SecretData> ResidentUnseal(absl::string_view key_id,
                                            absl::string_view sealed,
                                            absl::string_view aad) override;
  absl::Status DestroyResidentKey(absl::string_view key_id) override;
  absl::Status CheckHealth() override;
  absl::StatusOr<std::string> GetOrCreateSigningKey(absl::string_view label) override;
  absl::StatusOr<std::string> Sign(absl::string_view label, absl::string_view data) override;

  // Test controls.
  void SetAvailable(bool available) { available_ = available; }
  size_t resident_key_count();
  int unseal_calls() const { return unseal_calls_; }
  // While stalled, CheckHealth() hangs (an HSM that stopped answering)
  // until Release().  health_checks_waiting() counts the hung calls.
  void StallHealthChecks();
  void Release();
  int health_checks_waiting();

 private:
  absl::Status Check();
  std::unique_ptr<crypto::Aead> root_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<crypto::Aead>> resident_;
  std::map<std::string, std::shared_ptr<void>> signing_;  // label -> EVP_PKEY
  std::atomic<bool> available_{true};
  std::atomic<int> unseal_calls_{0};
  std::condition_variable stall_cv_;
  bool stalled_ = false;  // guarded by mu_
  int stalled_waiting_ = 0;
};

}  // namespace keyward::hsm::testing

#endif  // KEYWARD_TESTING_SOFTWARE_ROOT_OF_TRUST_H_
