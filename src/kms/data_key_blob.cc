#include "kms/data_key_blob.h"

#include "absl/strings/str_cat.h"
#include "crypto/hash.h"
#include "format/header.h"
#include "format/wire.h"
#include "keyward/errors.h"

namespace keyward::kms {
namespace {

constexpr absl::string_view kAadLabel = "keyward kms data key v1";
constexpr absl::string_view kTenantAadLabel = "keyward tenant data key v1";

absl::Status Malformed(absl::string_view what) {
  return MakeError(absl::StatusCode::kInvalidArgument,
                   ErrorCode::kMalformedHeader,
                   absl::StrCat("not a Keyward wrapped data key: ", what));
}

}  // namespace

std::string ContextDigestSerialized(absl::string_view serialized_context) {
  auto digest = crypto::Sha256(serialized_context);
  return std::string(reinterpret_cast<const char*>(digest.data()),
                     kContextDigestSize);
}

std::string ContextDigest(const EncryptionContext& context) {
  return ContextDigestSerialized(format::SerializeContext(context));
}

std::string EncodeBlobHeader(const DataKeyBlob& blob) {
  std::string out;
  out.push_back(static_cast<char>(blob.version));
  format::AppendBigEndian(&out, blob.environment.size(), 1);
  out.append(blob.environment);
  format::AppendBigEndian(&out, blob.key_name.size(), 2);
  out.append(blob.key_name);
  format::AppendBigEndian(&out, blob.key_version, 4);
  out.append(blob.context_digest);
  return out;
}

std::string EncodeBlob(const DataKeyBlob& blob) {
  return EncodeBlobHeader(blob) + blob.sealed;
}

absl::StatusOr<DataKeyBlob> DecodeBlob(absl::string_view b) {
  DataKeyBlob blob;
  size_t pos = 0;
  auto take = [&](size_t n) -> absl::StatusOr<absl::string_view> {
    if (b.size() - pos < n) return Malformed("too short");
    absl::string_view out = b.substr(pos, n);
    pos += n;
    return out;
  };
  auto version = take(1);
  if (!version.ok()) return version.status();
  blob.version = static_cast<uint8_t>((*version)[0]);
  if (SealedSizeFor(blob.version) == 0) return Malformed("unknown blob version");
  auto env_len = take(1);
  if (!env_len.ok()) return env_len.status();
  auto env = take(static_cast<uint8_t>((*env_len)[0]));
  if (!env.ok()) return env.status();
  blob.environment = std::string(*env);
  if (!format::ValidateEnvironment(blob.environment).ok()) {
    return Malformed("bad environment");
  }
  auto name_len = take(2);
  if (!name_len.ok()) return name_len.status();
  auto name = take(format::LoadBigEndian(*name_len));
  if (!name.ok()) return name.status();
  blob.key_name = std::string(*name);
  if (!format::ValidateKeyName(blob.key_name).ok()) {
    return Malformed("bad key name");
  }
  auto kv = take(4);
  if (!kv.ok()) return kv.status();
  blob.key_version = static_cast<uint32_t>(format::LoadBigEndian(*kv));
  auto digest = take(kContextDigestSize);
  if (!digest.ok()) return digest.status();
  blob.context_digest = std::string(*digest);
  auto sealed = take(SealedSizeFor(blob.version));
  if (!sealed.ok()) return sealed.status();
  blob.sealed = std::string(*sealed);
  if (pos != b.size()) return Malformed("unexpected bytes at the end");
  return blob;
}

std::string DataKeyAadSerialized(const DataKeyBlob& blob,
                                 absl::string_view serialized_context) {
  return absl::StrCat(kAadLabel, EncodeBlobHeader(blob), serialized_context);
}

std::string TenantDataKeyAadSerialized(const DataKeyBlob& blob,
                                       absl::string_view serialized_context) {
  return absl::StrCat(kTenantAadLabel, EncodeBlobHeader(blob), serialized_context);
}

std::string DataKeyAad(const DataKeyBlob& blob, const EncryptionContext& context) {
  return DataKeyAadSerialized(blob, format::SerializeContext(context));
}

std::string KekAad(absl::string_view environment, absl::string_view key_name,
                   uint32_t version) {
  return absl::StrCat("keyward kek v1", "|", environment, "|", key_name, "|", version);
}

std::string TenantKeyAad(absl::string_view environment, absl::string_view key_name,
                         absl::string_view tenant) {
  return absl::StrCat("keyward tenant key v1", "|", environment, "|", key_name, "|", tenant);
}

}  // namespace keyward::kms
