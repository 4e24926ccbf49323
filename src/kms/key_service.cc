// KeyService (kms/key_service.h).
#include "kms/key_service.h"

#include <array>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "crypto/random.h"
#include "format/header.h"
#include "keyward/errors.h"
#include "keyward/message.h"
#include "kms/kms_keyring.h"
#include "kms/version_errors.h"
#include "metrics/metrics.h"

namespace keyward::kms {

using keystore::CanDecrypt;
using keystore::Key;
using keystore::KekProtection;
using keystore::KeyVersion;
using keystore::VersionState;

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

absl::StatusOr<KeyVersion> KeyService::NewVersion(const Key& key,
                                                  uint32_t version,
                                                  KekProtection protection) {
  KeyVersion v;
  v.version = version;
  v.state = VersionState::kEnabled;
  v.protection = protection;
  v.created = options_.clock->Now();
  if (protection == KekProtection::kWrappedByRoot) {
    // The KEK comes from the HSM's RNG and is stored only sealed by the root.
    KW_ASSIGN_OR_RETURN(SecretData kek, root_->GenerateRandom(32));
    KW_ASSIGN_OR_RETURN(v.sealed_kek,
                        root_->Seal(kek, KekAad(key.environment, key.name,
                                                version)));
  } else {
    KW_ASSIGN_OR_RETURN(
        v.hsm_key_id,
        root_->CreateResidentKey(absl::StrCat("keyward-kek/", key.environment,
                                              "/", key.name, "/v", version)));
  }
  return v;
}

absl::StatusOr<Key> KeyService::CreateKey(const CreateKeyRequest& request) {
  KW_RETURN_IF_ERROR(keystore::ValidateKeyName(request.name));
  KW_RETURN_IF_ERROR(keystore::ValidateLabels(request.labels));
  if (request.rotation_period < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("rotation period must not be negative");
  }
  if (request.purpose != keystore::KeyPurpose::kEnvelopeEncryption) {
    return absl::UnimplementedError(absl::StrCat(
        "keys for ", keystore::KeyPurposeName(request.purpose),
        " arrive with field-level encryption; create an envelope-encryption "
        "key"));
  }
  if (!format::IsKnownSuite(static_cast<uint16_t>(request.suite))) {
    return absl::InvalidArgumentError("unknown suite");
  }
  // Fail fast, before spending an HSM operation.
  if (store_->GetKey(request.name).ok()) {
    return absl::AlreadyExistsError(
        absl::StrCat("a key named '", request.name, "' already exists"));
  }
  Key key;
  key.name = request.name;
  key.purpose = request.purpose;
  key.suite = request.suite;
  key.environment = options_.environment;
  key.labels = request.labels;
  key.rotation_period = request.rotation_period;
  key.primary_version = 1;
  key.created = key.updated = options_.clock->Now();
  KW_ASSIGN_OR_RETURN(
      KeyVersion v1,
      NewVersion(key, 1, request.protection.value_or(options_.default_protection)));
  key.versions.push_back(std::move(v1));
  KW_RETURN_IF_ERROR(store_->CreateKey(key));
  key.revision = 1;
  cache_.Forget(key.name);
  AttachDrillSample(key.name);
  return GetKey(key.name);
}

absl::StatusOr<Key> KeyService::RotateKey(absl::string_view name) {
  KW_ASSIGN_OR_RETURN(auto rotated, RotateKeyIf(name, [](const Key&) { return true; }));
  return *rotated;
}

absl::StatusOr<std::optional<Key>> KeyService::RotateKeyIf(
    absl::string_view name, const std::function<bool(const Key&)>& due) {
  // Checked again inside the transaction: "not due" aborts it unwritten.
  constexpr absl::string_view kNotDue = "keyward: rotation not due";
  auto result = Mutate(name, [&](Key& key) -> absl::Status {
    if (!due(Public(key))) return absl::CancelledError(kNotDue);
    const uint32_t next = key.versions.back().version + 1;
    KW_ASSIGN_OR_RETURN(KeyVersion v,
                        NewVersion(key, next, options_.default_protection));
    KeyVersion* old = key.FindVersion(key.primary_version);
    if (old != nullptr && old->state == VersionState::kEnabled) {
      old->state = VersionState::kDecryptOnly;
    }
    key.versions.push_back(std::move(v));
    key.primary_version = next;
    return absl::OkStatus();
  });
  if (absl::IsCancelled(result.status()) && result.status().message() == kNotDue) {
    return std::optional<Key>();
  }
  KW_RETURN_IF_ERROR(result.status());
  AttachDrillSample(std::string(name));
  KW_ASSIGN_OR_RETURN(Key after, GetKey(name));
  return std::optional<Key>(std::move(after));
}

absl::StatusOr<Key> KeyService::UpdateKey(absl::string_view name,
                                          const UpdateKeyRequest& request) {
  return Mutate(name, [&](Key& key) -> absl::Status {
    if (request.rotation_period) {
      if (*request.rotation_period < absl::ZeroDuration()) {
        return absl::InvalidArgumentError("rotation period must not be negative");
      }
      key.rotation_period = *request.rotation_period;
    }
    for (const auto& [k, v] : request.set_labels) key.labels[k] = v;
    for (const std::string& k : request.remove_labels) key.labels.erase(k);
    return keystore::ValidateLabels(key.labels);
  });
}

absl::StatusOr<Key> KeyService::EnableVersion(absl::string_view name,
                                              uint32_t version) {
  return Mutate(name, [&](Key& key) -> absl::Status {
    KeyVersion* v = key.FindVersion(version);
    if (v == nullptr) return NoSuchVersion(name, version);
    switch (v->state) {
      case VersionState::kEnabled:
        return absl::OkStatus();
      case VersionState::kDecryptOnly:
      case VersionState::kDisabled:
        v->state = VersionState::kEnabled;
        return absl::OkStatus();
      case VersionState::kPendingDestruction:
        return absl::FailedPreconditionError(absl::StrCat(
            "key ", name, " version ", version,
            " is scheduled for destruction; cancel it first with `keyward key "
            "cancel-destroy ", name, " ", version, "`"));
      case VersionState::kDestroyed:
        return VersionNotUsable(key, *v);
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<Key> KeyService::DisableVersion(absl::string_view name,
                                               uint32_t version, bool force) {
  if (!force) {
    const absl::Status gate = CheckRetirement(name, version);
    if (!gate.ok() && gate.code() != absl::StatusCode::kNotFound) return gate;
  }
  return Mutate(name, [&](Key& key) -> absl::Status {
    KeyVersion* v = key.FindVersion(version);
    if (v == nullptr) return NoSuchVersion(name, version);
    if (version == key.primary_version) {
      return absl::FailedPreconditionError(absl::StrCat(
          "version ", version, " is the primary version of key ", name,
          " and cannot be disabled; rotate the key first"));
    }
    if (v->state == VersionState::kPendingDestruction ||
        v->state == VersionState::kDestroyed) {
      return absl::FailedPreconditionError(absl::StrCat(
          "key ", name, " version ", version, " is ",
          keystore::VersionStateName(v->state)));
    }
    v->state = VersionState::kDisabled;
    return absl::OkStatus();
  });
}

absl::StatusOr<Key> KeyService::SetPrimaryVersion(absl::string_view name,
                                                  uint32_t version) {
  return Mutate(name, [&](Key& key) -> absl::Status {
    KeyVersion* v = key.FindVersion(version);
    if (v == nullptr) return NoSuchVersion(name, version);
    if (v->state != VersionState::kEnabled) {
      return absl::FailedPreconditionError(absl::StrCat(
          "only an enabled version can be primary; key ", name, " version ",
          version, " is ", keystore::VersionStateName(v->state)));
    }
    KeyVersion* old = key.FindVersion(key.primary_version);
    if (old != nullptr && old != v && old->state == VersionState::kEnabled) {
      old->state = VersionState::kDecryptOnly;
    }
    key.primary_version = version;
    return absl::OkStatus();
  });
}

absl::StatusOr<Key> KeyService::ScheduleVersionDestruction(
    absl::string_view name, uint32_t version, std::optional<absl::Duration> wait,
    bool force) {
  const absl::Duration delay = wait.value_or(options_.default_destruction_wait);
  if (delay < options_.min_destruction_wait) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the destruction waiting period must be at least ",
        absl::FormatDuration(options_.min_destruction_wait), ", got ",
        absl::FormatDuration(delay)));
  }
  if (!force) {
    const absl::Status gate = CheckRetirement(name, version);
    if (!gate.ok() && gate.code() != absl::StatusCode::kNotFound) return gate;
  }
  return Mutate(name, [&](Key& key) -> absl::Status {
    KeyVersion* v = key.FindVersion(version);
    if (v == nullptr) return NoSuchVersion(name, version);
    if (v->state == VersionState::kPendingDestruction) {
      return absl::FailedPreconditionError(absl::StrCat(
          "key ", name, " version ", version,
          " is already scheduled for destruction on ",
          HumanTime(*v->destroy_after)));
    }
    if (v->state == VersionState::kDestroyed) return VersionNotUsable(key, *v);
    int others_decryptable = 0;
    for (const KeyVersion& o : key.versions) {
      if (o.version != version && CanDecrypt(o.state)) ++others_decryptable;
    }
    if (version == key.primary_version && others_decryptable > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "version ", version, " is the primary version of key ", name,
          " and cannot be destroyed; rotate the key first"));
    }
    if (others_decryptable == 0 && CanDecrypt(v->state) && !force) {
      return absl::FailedPreconditionError(absl::StrCat(
          "version ", version, " is the last version of key ", name,
          " that can decrypt: destroying it makes everything under the key "
          "unreadable for good. Repeat with --force to crypto-shred the key"));
    }
    v->state_before_destruction = v->state;
    v->state = VersionState::kPendingDestruction;
    v->destroy_after = options_.clock->Now() + delay;
    return absl::OkStatus();
  });
}

absl::StatusOr<Key> KeyService::CancelVersionDestruction(absl::string_view name,
                                                         uint32_t version) {
  return Mutate(name, [&](Key& key) -> absl::Status {
    KeyVersion* v = key.FindVersion(version);
    if (v == nullptr) return NoSuchVersion(name, version);
    if (v->state != VersionState::kPendingDestruction) {
      return absl::FailedPreconditionError(absl::StrCat(
          "key ", name, " version ", version, " is not scheduled for "
          "destruction (it is ", keystore::VersionStateName(v->state), ")"));
    }
    // Back to what it was; versions scheduled before that was recorded
    // come back disabled (enabled for a primary), as they always did.
    v->state = v->state_before_destruction.value_or(
        version == key.primary_version ? VersionState::kEnabled : VersionState::kDisabled);
    if (version == key.primary_version) v->state = VersionState::kEnabled;
    v->state_before_destruction.reset();
    v->destroy_after.reset();
    return absl::OkStatus();
  });
}

KeyService::DestructionRun KeyService::ProcessDueDestructions() {
  const absl::Time now = options_.clock->Now();
  DestructionRun run;
  auto note = [&run](const absl::Status& s) {
    if (run.status.ok()) run.status = s;
  };
  auto due = store_->ListDueDestructions(now);
  if (!due.ok()) {
    run.status = due.status();
    return run;
  }
  for (const keystore::VersionRef& ref : *due) {
    auto key = store_->GetKey(ref.key_name);
    if (!key.ok()) {
      note(key.status());
      continue;
    }
    const KeyVersion* v = key->FindVersion(ref.version);
    if (v == nullptr) continue;
    const std::string hsm_key_id =
        v->protection == KekProtection::kHsmResident ? v->hsm_key_id : "";
    if (v->state == VersionState::kPendingDestruction) {
      // The store first, re-checked in the same change: a cancel that came
      // in since the list was read wins, and no usable version is ever left
      // without its key material.
      auto result = Mutate(ref.key_name, [&](Key& k) -> absl::Status {
        KeyVersion* kv = k.FindVersion(ref.version);
        if (kv == nullptr || kv->state != VersionState::kPendingDestruction ||
            !kv->destroy_after || *kv->destroy_after > now) {
          return absl::CancelledError("no longer due");
        }
        kv->state = VersionState::kDestroyed;
        kv->destroyed = now;
        kv->sealed_kek.clear();
        kv->state_before_destruction.reset();
        return absl::OkStatus();  // hsm_key_id stays until the object is gone
      });
      if (!result.ok()) {
        if (!absl::IsCancelled(result.status())) note(result.status());
        continue;
      }
      run.destroyed.push_back(ref);
    } else if (v->state != VersionState::kDestroyed) {
      continue;
    }
    // Destroyed in the store, now or by a run that stopped before this
    // step: its HSM object goes, then the store forgets the object.
    if (hsm_key_id.empty()) continue;
    if (absl::Status s = root_->DestroyResidentKey(hsm_key_id); !s.ok()) {
      note(s);
      continue;
    }
    auto forgot = Mutate(ref.key_name, [&](Key& k) -> absl::Status {
      KeyVersion* kv = k.FindVersion(ref.version);
      if (kv != nullptr && kv->state == VersionState::kDestroyed) kv->hsm_key_id.clear();
      return absl::OkStatus();
    });
    if (!forgot.ok()) note(forgot.status());
  }
  if (!run.destroyed.empty() || scrub_owed_.load()) {
    // The sealed KEK was overwritten in the database; its older copies in
    // the write-ahead log go now, or the live root key could still unseal
    // them from the file.
    absl::Status scrubbed = store_->Scrub();
    scrub_owed_.store(!scrubbed.ok());
    note(scrubbed);
  }
  return run;
}

absl::Status KeyService::CheckRetirement(absl::string_view name, uint32_t version) {
  KW_ASSIGN_OR_RETURN(Key key, GetKey(name));
  const KeyVersion* v = key.FindVersion(version);
  if (v == nullptr) return NoSuchVersion(name, version);
  KW_ASSIGN_OR_RETURN(auto reports, store_->ListDataSetReports(name));
  for (const keystore::DataSetReport& r : reports) {
    auto it = r.rows_per_version.find(version);
    if (it != r.rows_per_version.end() && it->second > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "key ", name, " version ", version, " still has ", it->second,
          " row(s) in data set ", r.data_set, " (report of ", HumanTime(r.reported),
          "); re-encrypt them first (`keyward reencrypt ...`) or pass --force"));
    }
  }
  if (v->usage.last_decrypt &&
      options_.clock->Now() - *v->usage.last_decrypt < options_.retirement_quiet_period) {
    return absl::FailedPreconditionError(absl::StrCat(
        "key ", name, " version ", version, " served a decrypt at ",
        HumanTime(*v->usage.last_decrypt), ", within the quiet period of ",
        absl::FormatDuration(options_.retirement_quiet_period),
        ": something still reads data under it; wait, re-encrypt, or pass --force"));
  }
  return absl::OkStatus();
}

absl::Status KeyService::ReportDataSet(keystore::DataSetReport report) {
  KW_ASSIGN_OR_RETURN(Key key, GetKey(report.key_name));
  if (report.data_set.empty() || report.data_set.size() > 1024) {
    return absl::InvalidArgumentError("a data set name is 1 to 1024 bytes");
  }
  for (const auto& [version, rows] : report.rows_per_version) {
    if (key.FindVersion(version) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the report counts rows on version ", version, " of key ", report.key_name,
          ", which does not exist"));
    }
  }
  report.reported = options_.clock->Now();
  return store_->PutDataSetReport(report);
}

absl::StatusOr<std::vector<keystore::DataSetReport>> KeyService::ListDataSetReports(
    absl::string_view name) {
  KW_RETURN_IF_ERROR(GetKey(name).status());
  return store_->ListDataSetReports(name);
}

std::string KeyService::DrillPlaintext(absl::string_view name, uint32_t version) {
  return absl::StrCat("keyward rotation drill sample: key ", name, " version ", version);
}

namespace {
// Makes the drill sample's data key through WrapDataKey (counted toward the
// version's limit like every wrap, but not as a data key a caller got).
class DrillKeyring final : public Keyring {
 public:
  DrillKeyring(KeyService* service, std::string name)
      : service_(service), name_(std::move(name)) {}
  absl::StatusOr<GeneratedDataKey> GenerateDataKey(
      const EncryptionContext& context) const override {
    KW_ASSIGN_OR_RETURN(SecretData dek, crypto::GenerateKey(32));
    KW_ASSIGN_OR_RETURN(WrappedKey w, service_->WrapDataKey(name_, dek, context));
    return GeneratedDataKey{std::move(dek),
                            EncryptedDataKey{kKmsProviderId, name_, std::move(w.wrapped)},
                            std::move(w.key)};
  }
  absl::StatusOr<WrappedDataKey> WrapDataKey(const SecretData&,
                                             const EncryptionContext&) const override {
    return absl::UnimplementedError("drill keyring");
  }
  absl::StatusOr<SecretData> UnwrapDataKey(const EncryptedDataKey&,
                                           const EncryptionContext&) const override {
    return absl::UnimplementedError("drill keyring");
  }
  bool Owns(const EncryptedDataKey&) const override { return false; }

 private:
  KeyService* const service_;
  const std::string name_;
};
}  // namespace

void KeyService::AttachDrillSample(const std::string& name) {
  // Best effort: a key without a sample still works, and the drill reports
  // the missing sample.
  auto key = GetKey(name);
  if (!key.ok()) return;
  const uint32_t version = key->primary_version;
  DrillKeyring keyring(this, name);
  const Keyring* keyrings[] = {&keyring};
  EncryptOptions options;
  options.suite = key->suite;
  auto message = EncryptMessage(DrillPlaintext(name, version),
                                {{"keyward-drill", absl::StrCat(name, "/v", version)}},
                                keyrings, options);
  if (!message.ok()) return;
  auto info = InspectMessage(*message);
  if (!info.ok() || info->key.key_version != version) return;  // rotated meanwhile
  (void)Mutate(name, [&](Key& k) -> absl::Status {
    KeyVersion* v = k.FindVersion(version);
    if (v != nullptr && v->drill_sample.empty()) v->drill_sample = *message;
    return absl::OkStatus();
  });
}

namespace {

// The four children, looked up once: this is on every data key's path.
metrics::Histogram& KekTimer(bool wrap, KekProtection protection) {
  using Children = std::array<std::array<metrics::Histogram*, 2>, 2>;
  static const Children children = [] {
    auto& family = metrics::Global().HistogramFamily(
        "keyward_kek_operation_duration_seconds",
        "Data key wrap/unwrap under a KEK version: software (KEK in locked memory) or hsm "
        "(HSM-resident KEK).",
        {"operation", "backend"});
    Children c;
    c[0] = {&family.With({"unwrap", "software"}), &family.With({"unwrap", "hsm"})};
    c[1] = {&family.With({"wrap", "software"}), &family.With({"wrap", "hsm"})};
    return c;
  }();
  return *children[wrap ? 1 : 0][protection == KekProtection::kHsmResident ? 1 : 0];
}

// A key made for signed messages wraps only data keys bound to a signing
// key: every message under it must then be signed, so no reader who can
// decrypt can forge one (docs/decisions/0017).
absl::Status CheckSignedUse(const Key& key, const EncryptionContext& context) {
  if (!IsSignedSuite(key.suite)) return absl::OkStatus();
  if (!format::SigningKeyOf(key.suite, context).ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "key ", key.name, " is for signed messages (", SuiteName(key.suite),
        "): encrypt with that suite, which adds the message's signing key to the context"));
  }
  return absl::OkStatus();
}

// Encryptions under a version's KEK, for /metrics.
void CountWraps(const std::string& name, uint32_t version, uint64_t n) {
  static auto& issued_total = metrics::Global().CounterFamily(
      "keyward_data_keys_issued_total",
      "Encryptions under each key version's KEK: data keys issued, rewraps, drill samples "
      "(keys outside metrics.key_labels count as \"other\").",
      {"key", "version"});
  const std::string label = metrics::KeyLabel(name);
  issued_total.With({label, label == "other" ? "" : absl::StrCat(version)}).Inc(n);
}

absl::StatusOr<std::string> SealDataKey(hsm::RootOfTrust& root, KeyCache::VersionKek& rt,
                                        DataKeyBlob& blob, const SecretData& data_key,
                                        const EncryptionContext& context) {
  const std::string aad = DataKeyAad(blob, context);
  metrics::ScopedTimer timer(KekTimer(/*wrap=*/true, rt.protection));
  if (rt.protection == KekProtection::kHsmResident) {
    KW_ASSIGN_OR_RETURN(blob.sealed, root.ResidentSeal(rt.hsm_key_id, data_key, aad));
  } else {
    std::shared_ptr<crypto::Aead> kek;
    {
      std::lock_guard<std::mutex> lock(rt.mu);
      kek = rt.kek;
    }
    if (kek == nullptr) return absl::UnavailableError("KEK not loaded");
    KW_ASSIGN_OR_RETURN(blob.sealed, kek->Encrypt(data_key.AsStringView(), aad));
  }
  if (blob.sealed.size() != kSealedDataKeySize) {
    return absl::InternalError("sealed data key has an unexpected size");
  }
  return EncodeBlob(blob);
}

absl::StatusOr<SecretData> UnsealDataKey(hsm::RootOfTrust& root, KeyCache::VersionKek& rt,
                                         const DataKeyBlob& blob,
                                         absl::string_view serialized_context) {
  const std::string aad = DataKeyAadSerialized(blob, serialized_context);
  metrics::ScopedTimer timer(KekTimer(/*wrap=*/false, rt.protection));
  absl::StatusOr<SecretData> out;
  if (rt.protection == KekProtection::kHsmResident) {
    out = root.ResidentUnseal(rt.hsm_key_id, blob.sealed, aad);
    if (absl::IsUnavailable(out.status())) return out.status();
  } else {
    std::shared_ptr<crypto::Aead> kek;
    {
      std::lock_guard<std::mutex> lock(rt.mu);
      kek = rt.kek;
    }
    if (kek == nullptr) return absl::UnavailableError("KEK not loaded");
    out = kek->Decrypt(blob.sealed, aad);
  }
  if (!out.ok()) {
    return MakeError(
        absl::StatusCode::kInvalidArgument, ErrorCode::kAuthenticationFailed,
        absl::StrCat("the wrapped data key for key ", blob.key_name,
                     " version ", blob.key_version,
                     " failed authentication: it was modified or moved from "
                     "another key or version"));
  }
  return out;
}

}  // namespace

KeyService::PreparedContext KeyService::Prepare(const EncryptionContext& context) {
  PreparedContext p;
  p.serialized = format::SerializeContext(context);
  p.digest = ContextDigestSerialized(p.serialized);
  return p;
}

absl::StatusOr<std::vector<DataKey>> KeyService::GenerateDataKeys(
    absl::string_view name, const EncryptionContext& context, int count) {
  if (count < 1 || count > kMaxBatch) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a batch holds 1 to ", kMaxBatch, " data keys, got ", count));
  }
  KW_RETURN_IF_ERROR(format::ValidateContext(context));
  KW_ASSIGN_OR_RETURN(std::shared_ptr<const KeyCache::CachedKey> cached, cache_.Lookup(name));
  const Key& key = cached->key;
  KW_RETURN_IF_ERROR(CheckSignedUse(key, context));
  if (key.purpose != keystore::KeyPurpose::kEnvelopeEncryption) {
    return absl::FailedPreconditionError(absl::StrCat(
        "key ", name, " is for ", keystore::KeyPurposeName(key.purpose),
        ", not envelope encryption"));
  }
  const KeyVersion* primary = key.FindVersion(key.primary_version);
  if (primary == nullptr || primary->state != VersionState::kEnabled) {
    return absl::FailedPreconditionError(absl::StrCat(
        "key ", name, " has no enabled primary version (it is being "
        "destroyed); rotate it to create a new version"));
  }
  KW_ASSIGN_OR_RETURN(std::shared_ptr<KeyCache::VersionKek> rt,
                      cache_.Kek(*cached, primary->version));
  KW_RETURN_IF_ERROR(usage_.Reserve(key.name, primary->version, static_cast<uint64_t>(count)));
  DataKeyBlob blob;
  blob.environment = key.environment;
  blob.key_name = key.name;
  blob.key_version = primary->version;
  blob.context_digest = ContextDigest(context);
  std::vector<DataKey> out;
  out.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    DataKey dk;
    KW_ASSIGN_OR_RETURN(dk.plaintext, crypto::GenerateKey(32));
    KW_ASSIGN_OR_RETURN(dk.wrapped, SealDataKey(*root_, *rt, blob, dk.plaintext, context));
    dk.key = KeyReference{key.environment, key.name, primary->version};
    out.push_back(std::move(dk));
  }
  CountWraps(key.name, primary->version, static_cast<uint64_t>(count));
  usage_.Record(key.name, primary->version, 0, /*reader=*/true);
  return out;
}

absl::StatusOr<DataKey> KeyService::GenerateDataKey(
    absl::string_view name, const EncryptionContext& context) {
  KW_ASSIGN_OR_RETURN(std::vector<DataKey> keys,
                      GenerateDataKeys(name, context, 1));
  return std::move(keys[0]);
}

absl::StatusOr<WrappedKey> KeyService::GenerateDataKeyWithoutPlaintext(
    absl::string_view name, const EncryptionContext& context) {
  KW_ASSIGN_OR_RETURN(DataKey dk, GenerateDataKey(name, context));
  return WrappedKey{std::move(dk.wrapped), std::move(dk.key)};
}

absl::StatusOr<WrappedKey> KeyService::WrapDataKey(
    absl::string_view name, const SecretData& data_key,
    const EncryptionContext& context) {
  if (data_key.size() != 32) {
    return absl::InvalidArgumentError("data keys are 32 bytes");
  }
  KW_RETURN_IF_ERROR(format::ValidateContext(context));
  KW_ASSIGN_OR_RETURN(std::shared_ptr<const KeyCache::CachedKey> cached, cache_.Lookup(name));
  const Key& key = cached->key;
  KW_RETURN_IF_ERROR(CheckSignedUse(key, context));
  const KeyVersion* primary = key.FindVersion(key.primary_version);
  if (primary == nullptr || primary->state != VersionState::kEnabled) {
    return absl::FailedPreconditionError(
        absl::StrCat("key ", name, " has no enabled primary version"));
  }
  KW_ASSIGN_OR_RETURN(std::shared_ptr<KeyCache::VersionKek> rt,
                      cache_.Kek(*cached, primary->version));
  // A rewrap is an encryption under the KEK like any other: it counts
  // toward the version's limit.
  KW_RETURN_IF_ERROR(usage_.Reserve(key.name, primary->version, 1));
  CountWraps(key.name, primary->version, 1);
  DataKeyBlob blob;
  blob.environment = key.environment;
  blob.key_name = key.name;
  blob.key_version = primary->version;
  blob.context_digest = ContextDigest(context);
  WrappedKey out;
  KW_ASSIGN_OR_RETURN(out.wrapped, SealDataKey(*root_, *rt, blob, data_key, context));
  out.key = KeyReference{key.environment, key.name, primary->version};
  return out;
}

absl::StatusOr<SecretData> KeyService::Decrypt1(
    absl::string_view wrapped, const PreparedContext& context,
    std::map<std::pair<std::string, uint32_t>, uint64_t>* decrypts) {
  KW_ASSIGN_OR_RETURN(DataKeyBlob blob, DecodeBlob(wrapped));
  if (blob.environment != options_.environment) {
    return MakeError(absl::StatusCode::kFailedPrecondition,
                     ErrorCode::kEnvironmentMismatch,
                     absl::StrCat("the wrapped data key belongs to environment '",
                                  blob.environment, "' but this keywardd serves '",
                                  options_.environment,
                                  "'; environments never share keys"));
  }
  KW_ASSIGN_OR_RETURN(std::shared_ptr<const KeyCache::CachedKey> cached,
                      cache_.Lookup(blob.key_name));
  const KeyVersion* v = cached->key.FindVersion(blob.key_version);
  if (v == nullptr) return NoSuchVersion(blob.key_name, blob.key_version);
  if (!CanDecrypt(v->state)) return VersionNotUsable(cached->key, *v);
  if (context.digest != blob.context_digest) {
    return MakeError(absl::StatusCode::kFailedPrecondition,
                     ErrorCode::kContextMismatch,
                     "encryption context mismatch: the data key was wrapped "
                     "with a different encryption context");
  }
  KW_ASSIGN_OR_RETURN(std::shared_ptr<KeyCache::VersionKek> rt,
                      cache_.Kek(*cached, blob.key_version));
  KW_ASSIGN_OR_RETURN(SecretData dek, UnsealDataKey(*root_, *rt, blob, context.serialized));
  // A rotation drill opening the version's own sample is not a use of the
  // version: counting it would keep the retirement gate shut forever.
  if (v->drill_sample.empty() || !absl::StrContains(v->drill_sample, wrapped)) {
    ++(*decrypts)[{std::move(blob.key_name), blob.key_version}];
  }
  return dek;
}

absl::StatusOr<SecretData> KeyService::DecryptDataKey(
    absl::string_view wrapped, const EncryptionContext& context, bool reader) {
  std::map<std::pair<std::string, uint32_t>, uint64_t> decrypts;
  auto dek = Decrypt1(wrapped, Prepare(context), &decrypts);
  for (const auto& [id, n] : decrypts) usage_.Record(id.first, id.second, n, reader);
  return dek;
}

absl::StatusOr<std::vector<absl::StatusOr<SecretData>>>
KeyService::DecryptDataKeys(const std::vector<DecryptRequest>& requests, bool reader) {
  if (requests.empty() || requests.size() > static_cast<size_t>(kMaxBatch)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a batch holds 1 to ", kMaxBatch, " wrapped keys, got ",
        requests.size()));
  }
  std::vector<absl::StatusOr<SecretData>> out;
  out.reserve(requests.size());
  std::map<std::pair<std::string, uint32_t>, uint64_t> decrypts;
  // Batches usually repeat one context: serialize and digest it once.
  const EncryptionContext* last = nullptr;
  PreparedContext prepared;
  for (const DecryptRequest& r : requests) {
    if (last == nullptr || !(*last == r.context)) {
      prepared = Prepare(r.context);
      last = &r.context;
    }
    out.push_back(Decrypt1(r.wrapped, prepared, &decrypts));
  }
  for (const auto& [id, n] : decrypts) usage_.Record(id.first, id.second, n, reader);
  return out;
}

absl::StatusOr<WrappedKey> KeyService::ReWrapDataKey(
    absl::string_view wrapped, const EncryptionContext& context) {
  KW_ASSIGN_OR_RETURN(DataKeyBlob blob, DecodeBlob(wrapped));
  KW_ASSIGN_OR_RETURN(SecretData dek, DecryptDataKey(wrapped, context, /*reader=*/false));
  return WrapDataKey(blob.key_name, dek, context);
}

absl::StatusOr<std::string> KeyService::Encrypt(absl::string_view name,
                                                absl::string_view plaintext,
                                                const EncryptionContext& context) {
  if (plaintext.size() > kMaxPayload) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     ErrorCode::kLimitExceeded,
                     absl::StrCat("Encrypt takes at most 64 KiB, got ",
                                  plaintext.size(), " bytes; encrypt larger "
                                  "data in the SDK with a data key"));
  }
  // Messages made here use the key's suite (a key for signed messages
  // gets signed ones).
  KW_ASSIGN_OR_RETURN(std::shared_ptr<const KeyCache::CachedKey> cached, cache_.Lookup(name));
  EncryptOptions options;
  options.suite = cached->key.suite;
  LocalKmsKeyring keyring(this, std::string(name));
  const Keyring* keyrings[] = {&keyring};
  return EncryptMessage(plaintext, context, keyrings, options);
}

absl::StatusOr<SecretData> KeyService::Decrypt(absl::string_view key_name,
                                               absl::string_view message,
                                               const EncryptionContext& context) {
  if (message.size() > kMaxPayload + FormatLimits::kMaxHeaderSize + 4096) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     ErrorCode::kLimitExceeded,
                     "Decrypt takes messages of at most 64 KiB of plaintext; "
                     "decrypt larger ones in the SDK");
  }
  LocalKmsKeyring keyring(this, std::string(key_name));
  const Keyring* keyrings[] = {&keyring};
  DecryptOptions options;
  options.expected_context = context;
  options.expected_environment = options_.environment;
  return DecryptMessage(message, keyrings, options);
}

}  // namespace keyward::kms
