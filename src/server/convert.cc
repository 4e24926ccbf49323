#include "server/convert.h"

#include "keyward/message.h"

namespace keyward::server {
namespace {
int64_t Micros(const std::optional<absl::Time>& t) {
  return t ? absl::ToUnixMicros(*t) : 0;
}
}  // namespace

void ToProto(const keystore::Key& key, v1::Key* out) {
  out->set_name(key.name);
  out->set_purpose(std::string(keystore::KeyPurposeName(key.purpose)));
  out->set_suite(std::string(SuiteName(key.suite)));
  out->set_environment(key.environment);
  for (const auto& [k, v] : key.labels) (*out->mutable_labels())[k] = v;
  out->set_rotation_period_seconds(absl::ToInt64Seconds(key.rotation_period));
  out->set_primary_version(key.primary_version);
  out->set_created_unix_micros(absl::ToUnixMicros(key.created));
  out->set_updated_unix_micros(absl::ToUnixMicros(key.updated));
  for (const keystore::KeyVersion& v : key.versions) {
    v1::KeyVersion* pv = out->add_versions();
    pv->set_version(v.version);
    pv->set_state(std::string(keystore::VersionStateName(v.state)));
    pv->set_protection(std::string(keystore::KekProtectionName(v.protection)));
    pv->set_created_unix_micros(absl::ToUnixMicros(v.created));
    pv->set_destroy_after_unix_micros(Micros(v.destroy_after));
    pv->set_destroyed_unix_micros(Micros(v.destroyed));
    pv->set_data_keys_issued(v.usage.data_keys_issued);
    pv->set_decrypts(v.usage.decrypts);
    pv->set_last_used_unix_micros(Micros(v.usage.last_used));
    pv->set_last_decrypt_unix_micros(Micros(v.usage.last_decrypt));
    if (v.compromise) {
      pv->set_compromised_unix_micros(absl::ToUnixMicros(v.compromise->when));
      pv->set_compromise_reason(v.compromise->reason);
      pv->set_compromised_by(v.compromise->by);
    }
  }
}

void ToProto(const KeyReference& ref, v1::KeyReference* out) {
  out->set_environment(ref.environment);
  out->set_key_name(ref.key_name);
  out->set_key_version(ref.key_version);
}

EncryptionContext FromProto(
    const google::protobuf::Map<std::string, std::string>& context) {
  return EncryptionContext(context.begin(), context.end());
}

}  // namespace keyward::server
