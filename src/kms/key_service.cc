// KeyService's frame: construction (the environment's rules for the store
// and the HSM), reading keys and committing changes to them.
#include "kms/key_service.h"

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "format/header.h"
#include "keyward/errors.h"

namespace keyward::kms {

using keystore::Key;

namespace {
constexpr int kMaxMutationAttempts = 8;
}  // namespace

absl::StatusOr<std::unique_ptr<KeyService>> KeyService::Create(
    KeyServiceOptions options, std::shared_ptr<keystore::KeyStore> store,
    std::shared_ptr<hsm::RootOfTrust> root) {
  KW_RETURN_IF_ERROR(format::ValidateEnvironment(options.environment));
  if (options.clock == nullptr) options.clock = Clock::Real();
  KW_ASSIGN_OR_RETURN(keystore::StoreInfo info, store->GetInfo());
  if (info.environment != options.environment) {
    return MakeError(absl::StatusCode::kFailedPrecondition,
                     ErrorCode::kEnvironmentMismatch,
                     absl::StrCat("the key store belongs to environment '",
                                  info.environment, "' but the service is for '",
                                  options.environment, "'"));
  }
  const hsm::HsmInfo hsm = root->Info();
  if (options.environment == "production" && hsm.software) {
    if (!options.allow_software_hsm) {
      return absl::FailedPreconditionError(absl::StrCat(
          "environment 'production' refuses the software token '",
          hsm.token_label, "' (", hsm.manufacturer,
          "): configure a hardware HSM, or set allow_software_hsm: true to "
          "accept the risk explicitly"));
    }
    Log(LogLevel::kWarning, "hsm",
        "production is running on a SOFTWARE token because allow_software_hsm is set; its "
        "keys are only as safe as this machine's disk",
        {{"token", hsm.token_label}, {"manufacturer", hsm.manufacturer}});
  }
  return std::unique_ptr<KeyService>(
      new KeyService(std::move(options), std::move(store), std::move(root)));
}

KeyService::KeyService(KeyServiceOptions options,
                       std::shared_ptr<keystore::KeyStore> store,
                       std::shared_ptr<hsm::RootOfTrust> root)
    : options_(std::move(options)),
      store_(std::move(store)),
      root_(std::move(root)),
      cache_(store_, root_),
      tenants_(store_, root_, options_.environment, options_.clock,
               options_.max_cached_tenant_keys),
      usage_(store_, options_.clock, options_.max_data_keys_per_version,
             options_.usage_flush_interval) {}

// usage_'s destructor flushes the counters and gives back reservations.
KeyService::~KeyService() = default;

absl::Status KeyService::FlushUsage() { return usage_.Flush(); }

Key KeyService::Public(const Key& key) {
  Key out = key;
  for (keystore::KeyVersion& v : out.versions) v.sealed_kek.clear();
  usage_.ShowUnflushed(out);
  return out;
}

void KeyService::OnStoreChange(const keystore::StoreChange& change) {
  using Kind = keystore::StoreChange::Kind;
  switch (change.kind) {
    case Kind::kKey:
      cache_.Refresh(change.key_name);
      break;
    case Kind::kTenantKey:
      tenants_.Forget(change.key_name, change.tenant);
      break;
    case Kind::kGrants:
    case Kind::kSecret:
      break;  // access control's, not the core's
    case Kind::kEverything:
      cache_.RefreshAll();
      tenants_.Forget("", "");
      break;
  }
}

absl::StatusOr<Key> KeyService::Mutate(absl::string_view name,
                                       absl::FunctionRef<absl::Status(Key&)> m) {
  for (int attempt = 0; attempt < kMaxMutationAttempts; ++attempt) {
    KW_ASSIGN_OR_RETURN(Key key, store_->GetKey(name));
    KW_RETURN_IF_ERROR(m(key));
    key.updated = options_.clock->Now();
    absl::Status s = store_->UpdateKey(key);
    if (absl::IsAborted(s)) continue;
    KW_RETURN_IF_ERROR(s);
    key.revision += 1;
    cache_.Install(name, key);
    return Public(key);
  }
  return absl::AbortedError(absl::StrCat(
      "key ", name, " is being changed by others; try again"));
}

absl::StatusOr<Key> KeyService::GetKey(absl::string_view name) {
  KW_ASSIGN_OR_RETURN(Key key, store_->GetKey(name));
  return Public(key);
}

absl::StatusOr<keystore::KeyPage> KeyService::ListKeys(
    absl::string_view prefix, int page_size, absl::string_view page_token) {
  KW_ASSIGN_OR_RETURN(keystore::KeyPage page,
                      store_->ListKeys(prefix, page_size, page_token));
  for (Key& key : page.keys) key = Public(key);
  return page;
}

absl::Status KeyService::CheckHealth() {
  if (absl::Status s = root_->CheckHealth(); !s.ok()) {
    return absl::UnavailableError(absl::StrCat("HSM: ", s.message()));
  }
  if (auto n = store_->CountKeys(); !n.ok()) {
    return absl::UnavailableError(absl::StrCat("key store: ", n.status().message()));
  }
  return absl::OkStatus();
}

}  // namespace keyward::kms
