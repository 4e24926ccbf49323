#include "keystore/key_model.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "format/wire_names.h"
#include "format/header.h"

namespace keyward::keystore {
namespace {

template <typename Enum, size_t N>
absl::StatusOr<Enum> ParseName(
    absl::string_view name,
    const std::pair<Enum, absl::string_view> (&table)[N],
    absl::string_view what) {
  std::string options;
  for (const auto& [value, text] : table) {
    if (text == name) return value;
    absl::StrAppend(&options, options.empty() ? "" : ", ", text);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown ", what, " '", name, "'; use one of: ", options));
}

constexpr std::pair<KeyPurpose, absl::string_view> kPurposes[] = {
    {KeyPurpose::kEnvelopeEncryption, format::wire::kPurposeEnvelopeEncryption},
    {KeyPurpose::kDeterministicEncryption, format::wire::kPurposeDeterministicEncryption},
    {KeyPurpose::kBlindIndex, format::wire::kPurposeBlindIndex},
};
constexpr std::pair<VersionState, absl::string_view> kStates[] = {
    {VersionState::kEnabled, format::wire::kStateEnabled},
    {VersionState::kDecryptOnly, format::wire::kStateDecryptOnly},
    {VersionState::kDisabled, format::wire::kStateDisabled},
    {VersionState::kPendingDestruction, format::wire::kStatePendingDestruction},
    {VersionState::kDestroyed, format::wire::kStateDestroyed},
};
constexpr std::pair<KekProtection, absl::string_view> kProtections[] = {
    {KekProtection::kWrappedByRoot, format::wire::kProtectionWrappedByRoot},
    {KekProtection::kHsmResident, format::wire::kProtectionHsmResident},
};

template <typename Enum, size_t N>
absl::string_view NameOf(Enum value,
                         const std::pair<Enum, absl::string_view> (&table)[N]) {
  for (const auto& [v, text] : table) {
    if (v == value) return text;
  }
  return "unknown";
}

}  // namespace

absl::string_view KeyPurposeName(KeyPurpose p) { return NameOf(p, kPurposes); }
absl::string_view VersionStateName(VersionState s) { return NameOf(s, kStates); }
absl::string_view KekProtectionName(KekProtection p) {
  return NameOf(p, kProtections);
}
absl::StatusOr<KeyPurpose> ParseKeyPurpose(absl::string_view name) {
  return ParseName(name, kPurposes, "key purpose");
}
absl::StatusOr<VersionState> ParseVersionState(absl::string_view name) {
  return ParseName(name, kStates, "version state");
}
absl::StatusOr<KekProtection> ParseKekProtection(absl::string_view name) {
  return ParseName(name, kProtections, "KEK protection");
}

const KeyVersion* Key::FindVersion(uint32_t version) const {
  for (const KeyVersion& v : versions) {
    if (v.version == version) return &v;
  }
  return nullptr;
}

KeyVersion* Key::FindVersion(uint32_t version) {
  for (KeyVersion& v : versions) {
    if (v.version == version) return &v;
  }
  return nullptr;
}

absl::Status ValidateKeyName(absl::string_view name) {
  KW_RETURN_IF_ERROR(format::ValidateKeyName(name));
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == absl::string_view::npos) end = name.size();
    const absl::string_view segment = name.substr(start, end - start);
    if (segment == "." || segment == "..") {
      return absl::InvalidArgumentError(
          "a key name must not have a '.' or '..' segment (between slashes)");
    }
    start = end + 1;
  }
  return absl::OkStatus();
}

absl::Status ValidateLabels(const std::map<std::string, std::string>& labels) {
  if (labels.size() > 64) {
    return absl::InvalidArgumentError("a key has at most 64 labels");
  }
  for (const auto& [k, v] : labels) {
    if (k.empty() || k.size() > 63) {
      return absl::InvalidArgumentError(
          absl::StrCat("label key '", k, "' must be 1 to 63 characters"));
    }
    for (char c : k) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
            c == '-' || c == '.')) {
        return absl::InvalidArgumentError(absl::StrCat(
            "label key '", k, "' may only contain a-z, 0-9, '_', '-', '.'"));
      }
    }
    if (v.size() > 256) {
      return absl::InvalidArgumentError(
          absl::StrCat("label '", k, "' has a value over 256 bytes"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateKey(const Key& key) {
  KW_RETURN_IF_ERROR(ValidateKeyName(key.name));
  KW_RETURN_IF_ERROR(format::ValidateEnvironment(key.environment));
  KW_RETURN_IF_ERROR(ValidateLabels(key.labels));
  if (key.rotation_period < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("rotation period must not be negative");
  }
  if (key.versions.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("key ", key.name, " has no versions"));
  }
  uint32_t previous = 0;
  for (const KeyVersion& v : key.versions) {
    if (v.version <= previous) {
      return absl::InvalidArgumentError(
          absl::StrCat("key ", key.name, ": versions are not ascending"));
    }
    previous = v.version;
  }
  const KeyVersion* primary = key.FindVersion(key.primary_version);
  if (primary == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("key ", key.name, ": the primary version must exist"));
  }
  // The primary is enabled, unless the key is being shredded: then no
  // version at all can decrypt.
  if (primary->state != VersionState::kEnabled) {
    for (const KeyVersion& v : key.versions) {
      if (CanDecrypt(v.state)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "key ", key.name, ": the primary version must be enabled"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace keyward::keystore
