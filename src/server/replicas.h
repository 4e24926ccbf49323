// What keywardd needs to run as one of several replicas over one
// PostgreSQL key store (docs/ha.md): the store chosen by the config, values
// sealed by the HSM root key in the store (the shared policy, the audit
// anchors), and the routing of the store's change notifications to the
// caches that hold what changed.
#ifndef KEYWARD_SERVER_REPLICAS_H_
#define KEYWARD_SERVER_REPLICAS_H_

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "hsm/root_of_trust.h"
#include "keystore/key_store.h"
#include "server/access_control.h"
#include "server/config.h"

namespace keyward::kms {
class KeyService;
}

namespace keyward::server {

// The key store the config names: storage.sqlite or storage.postgres.
absl::StatusOr<std::unique_ptr<keystore::KeyStore>> OpenKeyStore(const ServerConfig& config);

// A value kept in the key store sealed by the HSM root key under
// associated data `aad`: confidential, and unforgeable by whoever can write
// the database.  Errors: the store's and the HSM's (kDataLoss for a value
// that does not unseal: it was altered or sealed for something else).
class SealedValue {
 public:
  SealedValue(keystore::KeyStore* store, hsm::RootOfTrust* root, std::string name,
              std::string aad)
      : store_(store), root_(root), name_(std::move(name)), aad_(std::move(aad)) {}
  absl::StatusOr<std::optional<std::string>> Load() const;
  absl::Status Store(absl::string_view value) const;
  const std::string& name() const { return name_; }

 private:
  keystore::KeyStore* const store_;
  hsm::RootOfTrust* const root_;
  const std::string name_;
  const std::string aad_;
};

// The name of the shared policy's sealed value.
inline constexpr char kSharedPolicyName[] = "policy";

// The policy shared by every replica of `environment`, sealed in `store`.
SharedPolicy MakeSharedPolicy(const std::string& environment, keystore::KeyStore* store,
                              hsm::RootOfTrust* root);

// Delivers the store's change notifications to the core's caches and to
// access control until Detach(), which the server calls before destroying
// them (the store, and its watcher thread, may outlive both).
class ChangeRouter {
 public:
  ChangeRouter(kms::KeyService* core, AccessControl* access) : core_(core), access_(access) {}
  void Deliver(const keystore::StoreChange& change);
  void Detach();

 private:
  std::mutex mu_;
  kms::KeyService* core_;   // GUARDED_BY(mu_); null once detached
  AccessControl* access_;   // GUARDED_BY(mu_)
};

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_REPLICAS_H_
