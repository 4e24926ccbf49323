// KeyService's data keys: generate them under the primary version, unwrap
// them (one or a batch), and wrap or rewrap them under the primary version;
// with the tenant layer (blob version 2) when the context names a tenant.
#include <array>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "crypto/random.h"
#include "format/header.h"
#include "keyward/errors.h"
#include "kms/key_service.h"
#include "kms/version_errors.h"
#include "metrics/metrics.h"

namespace keyward::kms {

using keystore::CanDecrypt;
using keystore::Key;
using keystore::KekProtection;
using keystore::KeyVersion;
using keystore::VersionState;

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

// The KEK's seal of `plaintext` (the data key, or for a tenant's data key
// its inner seal).  `blob` has every field but the sealed part.
absl::StatusOr<std::string> SealUnderKek(hsm::RootOfTrust& root, KeyCache::VersionKek& rt,
                                         const DataKeyBlob& blob,
                                         absl::string_view serialized_context,
                                         const SecretData& plaintext) {
  const std::string aad = DataKeyAadSerialized(blob, serialized_context);
  metrics::ScopedTimer timer(KekTimer(/*wrap=*/true, rt.protection));
  if (rt.protection == KekProtection::kHsmResident) {
    return root.ResidentSeal(rt.hsm_key_id, plaintext, aad);
  }
  std::shared_ptr<crypto::Aead> kek;
  {
    std::lock_guard<std::mutex> lock(rt.mu);
    kek = rt.kek;
  }
  if (kek == nullptr) return absl::UnavailableError("KEK not loaded");
  return kek->Encrypt(plaintext.AsStringView(), aad);
}

// Seals `data_key` into `blob` and encodes it.  `tenant` (the tenant's key)
// set: blob version 2, the data key sealed under the tenant key first.
absl::StatusOr<std::string> SealDataKey(hsm::RootOfTrust& root, KeyCache::VersionKek& rt,
                                        DataKeyBlob& blob, const SecretData& data_key,
                                        absl::string_view serialized_context,
                                        const crypto::Aead* tenant) {
  blob.version = tenant != nullptr ? kTenantBlobVersion : kBlobVersion;
  if (tenant == nullptr) {
    KW_ASSIGN_OR_RETURN(blob.sealed,
                        SealUnderKek(root, rt, blob, serialized_context, data_key));
  } else {
    KW_ASSIGN_OR_RETURN(std::string inner,
                        tenant->Encrypt(data_key.AsStringView(),
                                        TenantDataKeyAadSerialized(blob, serialized_context)));
    KW_ASSIGN_OR_RETURN(blob.sealed, SealUnderKek(root, rt, blob, serialized_context,
                                                  SecretData::CopyFrom(inner)));
  }
  if (blob.sealed.size() != SealedSizeFor(blob.version)) {
    return absl::InternalError("sealed data key has an unexpected size");
  }
  return EncodeBlob(blob);
}

absl::Status NotAuthentic(const DataKeyBlob& blob) {
  return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kAuthenticationFailed,
                   absl::StrCat("the wrapped data key for key ", blob.key_name, " version ",
                                blob.key_version,
                                " failed authentication: it was modified or moved from "
                                "another key or version"));
}

// Opens the KEK's seal: the data key (version 1) or the tenant layer's
// inner seal (version 2).
absl::StatusOr<SecretData> UnsealUnderKek(hsm::RootOfTrust& root, KeyCache::VersionKek& rt,
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
  if (!out.ok()) return NotAuthentic(blob);
  return out;
}

absl::Status EmptyTenant() {
  return absl::InvalidArgumentError(absl::StrCat(
      "the encryption context key ", kTenantContextKey,
      " names a tenant and cannot be empty; leave it out when the data has no tenant"));
}

// The kTenantContextKey value of `context`, if it has that key.  Errors:
// kInvalidArgument for an empty value (a tenant must be named).
absl::StatusOr<std::optional<std::string>> TenantOf(const EncryptionContext& context) {
  auto it = context.find(kTenantContextKey);
  if (it == context.end()) return std::optional<std::string>();
  if (it->second.empty()) return EmptyTenant();
  return std::optional<std::string>(it->second);
}

// A blob's version must agree with whether the context names a tenant:
// refused before anything is unwrapped, in both directions.
absl::Status CheckTenantLayer(const DataKeyBlob& blob, bool context_has_tenant) {
  if (blob.version == kBlobVersion && context_has_tenant) {
    return MakeError(absl::StatusCode::kFailedPrecondition, ErrorCode::kContextMismatch,
                     absl::StrCat("encryption context mismatch: the context names a tenant (",
                                  kTenantContextKey,
                                  ") but the wrapped data key was not made for one"));
  }
  if (blob.version == kTenantBlobVersion && !context_has_tenant) {
    return MakeError(absl::StatusCode::kFailedPrecondition, ErrorCode::kContextMismatch,
                     absl::StrCat("encryption context mismatch: the wrapped data key was made "
                                  "for a tenant but the context names none (",
                                  kTenantContextKey, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

KeyService::PreparedContext KeyService::Prepare(const EncryptionContext& context) {
  PreparedContext p;
  p.serialized = format::SerializeContext(context);
  p.digest = ContextDigestSerialized(p.serialized);
  if (auto it = context.find(kTenantContextKey); it != context.end()) p.tenant = it->second;
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
  if (primary == nullptr || primary->state != VersionState::kEnabled || primary->compromise) {
    return absl::FailedPreconditionError(absl::StrCat(
        "key ", name, " has no enabled primary version (it is being "
        "destroyed); rotate it to create a new version"));
  }
  KW_ASSIGN_OR_RETURN(std::shared_ptr<KeyCache::VersionKek> rt,
                      cache_.Kek(*cached, primary->version));
  KW_ASSIGN_OR_RETURN(std::optional<std::string> tenant, TenantOf(context));
  std::shared_ptr<const crypto::Aead> tenant_key;
  if (tenant) {
    KW_ASSIGN_OR_RETURN(tenant_key, tenants_.ForSeal(key.name, *tenant));
  }
  KW_RETURN_IF_ERROR(usage_.Reserve(key.name, primary->version, static_cast<uint64_t>(count)));
  const std::string serialized = format::SerializeContext(context);
  DataKeyBlob blob;
  blob.environment = key.environment;
  blob.key_name = key.name;
  blob.key_version = primary->version;
  blob.context_digest = ContextDigestSerialized(serialized);
  std::vector<DataKey> out;
  out.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    DataKey dk;
    KW_ASSIGN_OR_RETURN(dk.plaintext, crypto::GenerateKey(32));
    KW_ASSIGN_OR_RETURN(dk.wrapped, SealDataKey(*root_, *rt, blob, dk.plaintext, serialized,
                                                tenant_key.get()));
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
  if (primary == nullptr || primary->state != VersionState::kEnabled || primary->compromise) {
    return absl::FailedPreconditionError(
        absl::StrCat("key ", name, " has no enabled primary version"));
  }
  KW_ASSIGN_OR_RETURN(std::shared_ptr<KeyCache::VersionKek> rt,
                      cache_.Kek(*cached, primary->version));
  // A tenant's data key keeps its tenant layer when it is rewrapped (sealed
  // again under the same tenant key, with a fresh nonce).
  KW_ASSIGN_OR_RETURN(std::optional<std::string> tenant, TenantOf(context));
  std::shared_ptr<const crypto::Aead> tenant_key;
  if (tenant) {
    KW_ASSIGN_OR_RETURN(tenant_key, tenants_.ForSeal(key.name, *tenant));
  }
  // A rewrap is an encryption under the KEK like any other: it counts
  // toward the version's limit.
  KW_RETURN_IF_ERROR(usage_.Reserve(key.name, primary->version, 1));
  CountWraps(key.name, primary->version, 1);
  const std::string serialized = format::SerializeContext(context);
  DataKeyBlob blob;
  blob.environment = key.environment;
  blob.key_name = key.name;
  blob.key_version = primary->version;
  blob.context_digest = ContextDigestSerialized(serialized);
  WrappedKey out;
  KW_ASSIGN_OR_RETURN(out.wrapped,
                      SealDataKey(*root_, *rt, blob, data_key, serialized, tenant_key.get()));
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
                      cache_.LookupVersion(blob.key_name, blob.key_version));
  const KeyVersion* v = cached->key.FindVersion(blob.key_version);
  if (v == nullptr) return NoSuchVersion(blob.key_name, blob.key_version);
  if (!CanDecrypt(v->state)) return VersionNotUsable(cached->key, *v);
  if (context.tenant && context.tenant->empty()) return EmptyTenant();
  KW_RETURN_IF_ERROR(CheckTenantLayer(blob, context.tenant.has_value()));
  if (context.digest != blob.context_digest) {
    return MakeError(absl::StatusCode::kFailedPrecondition,
                     ErrorCode::kContextMismatch,
                     "encryption context mismatch: the data key was wrapped "
                     "with a different encryption context");
  }
  KW_ASSIGN_OR_RETURN(std::shared_ptr<KeyCache::VersionKek> rt,
                      cache_.Kek(*cached, blob.key_version));
  // Version 1: the data key; version 2: its seal under the tenant key.
  KW_ASSIGN_OR_RETURN(SecretData dek, UnsealUnderKek(*root_, *rt, blob, context.serialized));
  if (blob.version == kTenantBlobVersion) {
    // The KEK's seal is authentic (so the blob was made here for this
    // context) before any tenant key is looked up.
    KW_ASSIGN_OR_RETURN(std::shared_ptr<const crypto::Aead> tenant_key,
                        tenants_.ForUnseal(blob.key_name, *context.tenant));
    auto inner = tenant_key->Decrypt(dek.AsStringView(),
                                     TenantDataKeyAadSerialized(blob, context.serialized));
    if (!inner.ok()) return NotAuthentic(blob);
    dek = std::move(*inner);
  }
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

}  // namespace keyward::kms
