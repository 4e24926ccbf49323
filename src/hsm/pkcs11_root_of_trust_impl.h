// Pkcs11RootOfTrust: the RootOfTrust over one token, every call serialized
// on one session.  Implemented in pkcs11_{session,sealing,signing}.cc.
#ifndef KEYWARD_HSM_PKCS11_ROOT_OF_TRUST_IMPL_H_
#define KEYWARD_HSM_PKCS11_ROOT_OF_TRUST_IMPL_H_

#include <p11-kit/pkcs11.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "hsm/pkcs11_module.h"
#include "hsm/pkcs11_root_of_trust.h"
#include "hsm/root_of_trust.h"
#include "keyward/secret_data.h"
#include "metrics/metrics.h"

namespace keyward::hsm {

// PKCS#11 call latency, including the wait for the serialized session.
metrics::Histogram& HsmTimer(const char* operation);

class Pkcs11RootOfTrust final : public RootOfTrust {
 public:
  Pkcs11RootOfTrust(Pkcs11Options options, CK_FUNCTION_LIST_PTR f,
                    std::shared_ptr<std::mutex> module_mu, SecretData pin)
      : options_(std::move(options)),
        f_(f),
        pin_(std::move(pin)),
        module_mu_(std::move(module_mu)),
        mu_(*module_mu_) {}

  ~Pkcs11RootOfTrust() override;

  // Finds the token, opens the session, logs in, finds or creates the root,
  // and seals the health probe.
  absl::Status Connect();

  HsmInfo Info() const override { return info_; }

  absl::StatusOr<SecretData> GenerateRandom(size_t size) override;
  absl::StatusOr<std::string> Seal(const SecretData& material,
                                   absl::string_view aad) override;
  absl::StatusOr<SecretData> Unseal(absl::string_view sealed,
                                    absl::string_view aad) override;
  absl::StatusOr<std::string> CreateResidentKey(
      absl::string_view label) override;
  absl::StatusOr<std::string> ResidentSeal(absl::string_view key_id,
                                           const SecretData& material,
                                           absl::string_view aad) override;
  absl::StatusOr<SecretData> ResidentUnseal(absl::string_view key_id,
                                            absl::string_view sealed,
                                            absl::string_view aad) override;
  absl::Status DestroyResidentKey(absl::string_view key_id) override;
  absl::StatusOr<std::string> GetOrCreateSigningKey(
      absl::string_view label) override;
  absl::StatusOr<std::string> Sign(absl::string_view label,
                                   absl::string_view data) override;
  absl::Status CheckHealth() override;

 private:
  // Finds the key to seal or unseal with, under the session lock.
  using FindKey = absl::FunctionRef<absl::StatusOr<CK_OBJECT_HANDLE>()>;

  // A session can look fine while the token cannot work (its storage gone,
  // a network HSM partitioned): open the probe sealed at start with the root
  // key, which also proves the root key is still the same key.
  absl::Status ProbeHealth();
  // A new session; failing that, a rescan of the module first (a token
  // that went away and came back is only seen after one).  Never creates a
  // root key: a blank token put in its place must not become the root.
  absl::Status RecoverLocked();
  absl::Status ConnectLocked(bool create_root);
  absl::Status OpenAndLogInLocked(bool create_root);
  absl::Status FindOrCreateRootLocked(bool create);
  // AES-256 inside the token, never leaving it, usable only to encrypt and
  // decrypt (seal) key material.
  CK_RV GenerateAesKey(absl::string_view label, absl::string_view id,
                       CK_OBJECT_HANDLE* out);
  absl::Status FindObjectsLocked(CK_ATTRIBUTE* tmpl, CK_ULONG n,
                                 std::vector<CK_OBJECT_HANDLE>* out);
  absl::Status FindKeyPairLocked(absl::string_view label,
                                 CK_OBJECT_HANDLE* priv, CK_OBJECT_HANDLE* pub);
  absl::StatusOr<CK_OBJECT_HANDLE> FindResidentLocked(absl::string_view key_id);
  absl::StatusOr<std::string> SealWith(FindKey find, const SecretData& material,
                                       absl::string_view aad);
  absl::StatusOr<SecretData> UnsealWith(FindKey find, absl::string_view sealed,
                                        absl::string_view aad);

  // Runs `op` (which returns a CK_RV) under the lock, reconnecting once if
  // the session was lost.
  template <typename Op>
  absl::Status WithSession(absl::string_view what, Op op) {
    std::lock_guard<std::mutex> lock(mu_);
    return WithSessionLocked(what, op);
  }

  template <typename Op>
  absl::Status WithSessionLocked(absl::string_view what, Op op) {
    CK_RV rv = op();
    if (rv != CKR_OK && SessionLost(rv)) {
      if (RecoverLocked().ok()) rv = op();
    }
    return rv == CKR_OK ? absl::OkStatus() : Pkcs11Error(rv, what);
  }

  const Pkcs11Options options_;
  CK_FUNCTION_LIST_PTR const f_;
  const SecretData pin_;
  HsmInfo info_;
  // Serializes every call into the module, shared by all users of it
  // (docs/decisions/0010).
  const std::shared_ptr<std::mutex> module_mu_;
  std::mutex& mu_;
  CK_SLOT_ID slot_ = 0;
  CK_SESSION_HANDLE session_ = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE root_ = CK_INVALID_HANDLE;
  std::map<std::string, CK_OBJECT_HANDLE> resident_;
  // The health probe: a known value sealed with the root key at start.
  static constexpr char kProbePlaintext[] = "keyward health probe";
  static constexpr char kProbeAad[] = "keyward-health-probe";
  std::string probe_sealed_;
  std::mutex health_mu_;
  std::atomic<bool> health_stale_{false};
  absl::Time last_health_check_ = absl::InfinitePast();
  absl::Status last_health_;
};

}  // namespace keyward::hsm

#endif  // KEYWARD_HSM_PKCS11_ROOT_OF_TRUST_IMPL_H_
