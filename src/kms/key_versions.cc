// KeyService's version lifecycle: create and rotate keys; enable, disable
// and promote versions; schedule, cancel and carry out their destruction.
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "format/header.h"
#include "kms/key_service.h"
#include "kms/version_errors.h"

namespace keyward::kms {

using keystore::CanDecrypt;
using keystore::Key;
using keystore::KekProtection;
using keystore::KeyVersion;
using keystore::VersionState;

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
        // A compromised version may decrypt again (to re-encrypt its data),
        // never wrap.
        v->state = v->compromise ? VersionState::kDecryptOnly : VersionState::kEnabled;
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
    if (v->compromise) {
      return absl::FailedPreconditionError(absl::StrCat(
          "key ", name, " version ", version,
          " was declared compromised and can never be primary again; rotate the key "
          "for a fresh version"));
    }
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
    if (v->compromise && v->state == VersionState::kEnabled) {
      v->state = VersionState::kDecryptOnly;
    }
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

}  // namespace keyward::kms
