// KeyService's data keys: generate them under the primary version, unwrap
// them (one or a batch), and wrap or rewrap them under the primary version.
#include <array>

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

}  // namespace keyward::kms
