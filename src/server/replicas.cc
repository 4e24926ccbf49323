#include "server/replicas.h"

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "kms/key_service.h"
#include "keystore/postgres_key_store.h"
#include "keystore/sqlite_key_store.h"
#include "metrics/metrics.h"

namespace keyward::server {

absl::StatusOr<std::unique_ptr<keystore::KeyStore>> OpenKeyStore(const ServerConfig& config) {
  if (!config.postgres_url.empty()) {
    KW_ASSIGN_OR_RETURN(auto store, keystore::PostgresKeyStore::Open(config.postgres_url,
                                                                    config.environment));
    return std::unique_ptr<keystore::KeyStore>(std::move(store));
  }
  KW_ASSIGN_OR_RETURN(auto store,
                      keystore::SqliteKeyStore::Open(config.sqlite_path, config.environment));
  return std::unique_ptr<keystore::KeyStore>(std::move(store));
}

absl::StatusOr<std::optional<std::string>> SealedValue::Load() const {
  KW_ASSIGN_OR_RETURN(std::optional<std::string> sealed, store_->GetSealedSecret(name_));
  if (!sealed) return std::optional<std::string>();
  absl::StatusOr<SecretData> plain = root_->Unseal(*sealed, aad_);
  if (!plain.ok()) {
    return absl::DataLossError(absl::StrCat(
        "the sealed value '", name_, "' in the key store does not unseal (",
        plain.status().message(), "): it was altered, or sealed by another deployment"));
  }
  return std::optional<std::string>(std::string(plain->AsStringView()));
}

absl::Status SealedValue::Store(absl::string_view value) const {
  KW_ASSIGN_OR_RETURN(std::string sealed, root_->Seal(SecretData::CopyFrom(value), aad_));
  return store_->SetSealedSecret(name_, sealed);
}

SharedPolicy MakeSharedPolicy(const std::string& environment, keystore::KeyStore* store,
                              hsm::RootOfTrust* root) {
  auto value = std::make_shared<SealedValue>(store, root, kSharedPolicyName,
                                             absl::StrCat("keyward policy v1|", environment));
  SharedPolicy shared;
  shared.load = [value] { return value->Load(); };
  shared.publish = [value](const std::string& yaml) { return value->Store(yaml); };
  return shared;
}

void ChangeRouter::Deliver(const keystore::StoreChange& change) {
  using Kind = keystore::StoreChange::Kind;
  static auto& received = metrics::Global().CounterFamily(
      "keyward_store_changes_total",
      "Change notifications from the shared key store, by kind.", {"kind"});
  static constexpr const char* kKinds[] = {"key", "grants", "tenant_key", "secret",
                                           "everything"};
  received.With({kKinds[static_cast<int>(change.kind)]}).Inc();
  std::lock_guard<std::mutex> lock(mu_);
  if (core_ == nullptr) return;
  core_->OnStoreChange(change);
  const bool everything = change.kind == Kind::kEverything;
  if (everything || change.kind == Kind::kGrants) {
    if (absl::Status s = access_->OnGrantsChange(); !s.ok()) {
      Log(LogLevel::kWarning, "replicas", "could not re-read the grants after a change",
          {{"error", std::string(s.message())}});
    }
  }
  if (everything || (change.kind == Kind::kSecret && change.key_name == kSharedPolicyName)) {
    absl::StatusOr<PolicyChange> p = access_->OnSharedPolicyChange();
    if (!p.ok()) {
      Log(LogLevel::kError, "replicas",
          "could not take up the shared policy; the one in force stays",
          {{"error", std::string(p.status().message())}});
    } else if (p->old_digest != p->new_digest) {
      Log(LogLevel::kInfo, "replicas", "policy changed by another replica",
          {{"old", p->old_digest}, {"new", p->new_digest}});
    }
  }
}

void ChangeRouter::Detach() {
  std::lock_guard<std::mutex> lock(mu_);
  core_ = nullptr;
  access_ = nullptr;
}

}  // namespace keyward::server
