// KeyService's drill samples: a known message under each new version, so
// that a rotation drill can prove the version still decrypts.
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "crypto/random.h"
#include "keyward/message.h"
#include "kms/key_service.h"
#include "kms/kms_keyring.h"

namespace keyward::kms {

using keystore::Key;
using keystore::KeyVersion;

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
  const KeyWrapper* keyrings[] = {&keyring};
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

}  // namespace keyward::kms
