// Pkcs11RootOfTrust's key material: random bytes, sealing with AES-GCM under
// the root key or a resident key, and resident keys' creation and destruction.
#include <cstring>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "crypto/random.h"
#include "hsm/pkcs11_root_of_trust_impl.h"

namespace keyward::hsm {
namespace {

constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;

// AES-GCM parameters for one seal or unseal; the buffers must outlive the
// call that uses them.
CK_GCM_PARAMS GcmParams(std::string& nonce, absl::string_view aad) {
  CK_GCM_PARAMS params{};
  params.pIv = reinterpret_cast<CK_BYTE_PTR>(nonce.data());
  params.ulIvLen = kNonceSize;
  params.ulIvBits = kNonceSize * 8;
  params.pAAD = reinterpret_cast<CK_BYTE_PTR>(const_cast<char*>(aad.data()));
  params.ulAADLen = aad.size();
  params.ulTagBits = kTagSize * 8;
  return params;
}

}  // namespace

absl::StatusOr<SecretData> Pkcs11RootOfTrust::GenerateRandom(size_t size) {
  metrics::ScopedTimer timer(HsmTimer("random"));
  SecretData out(size);
  KW_RETURN_IF_ERROR(WithSession("C_GenerateRandom", [&]() {
    return f_->C_GenerateRandom(session_, out.data(), size);
  }));
  return out;
}

absl::StatusOr<std::string> Pkcs11RootOfTrust::Seal(const SecretData& material,
                                                    absl::string_view aad) {
  metrics::ScopedTimer timer(HsmTimer("seal"));
  return SealWith(
      [this]() -> absl::StatusOr<CK_OBJECT_HANDLE> { return root_; },
      material, aad);
}

absl::StatusOr<SecretData> Pkcs11RootOfTrust::Unseal(absl::string_view sealed,
                                                     absl::string_view aad) {
  metrics::ScopedTimer timer(HsmTimer("unseal"));
  return UnsealWith(
      [this]() -> absl::StatusOr<CK_OBJECT_HANDLE> { return root_; },
      sealed, aad);
}

absl::StatusOr<std::string> Pkcs11RootOfTrust::CreateResidentKey(
    absl::string_view label) {
  KW_ASSIGN_OR_RETURN(std::string id, crypto::RandomBytes(16));
  std::lock_guard<std::mutex> lock(mu_);
  CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
  KW_RETURN_IF_ERROR(WithSessionLocked("C_GenerateKey (resident KEK)", [&]() {
    return GenerateAesKey(label, id, &handle);
  }));
  std::string hex = absl::BytesToHexString(id);
  resident_[hex] = handle;
  return hex;
}

absl::StatusOr<std::string> Pkcs11RootOfTrust::ResidentSeal(
    absl::string_view key_id, const SecretData& material,
    absl::string_view aad) {
  metrics::ScopedTimer timer(HsmTimer("resident_seal"));
  return SealWith([&]() { return FindResidentLocked(key_id); }, material,
                  aad);
}

absl::StatusOr<SecretData> Pkcs11RootOfTrust::ResidentUnseal(
    absl::string_view key_id, absl::string_view sealed, absl::string_view aad) {
  metrics::ScopedTimer timer(HsmTimer("resident_unseal"));
  return UnsealWith([&]() { return FindResidentLocked(key_id); }, sealed,
                    aad);
}

absl::Status Pkcs11RootOfTrust::DestroyResidentKey(absl::string_view key_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto handle = FindResidentLocked(key_id);
  if (absl::IsNotFound(handle.status())) return absl::OkStatus();
  KW_RETURN_IF_ERROR(handle.status());
  KW_RETURN_IF_ERROR(WithSessionLocked("C_DestroyObject", [&]() {
    return f_->C_DestroyObject(session_, *handle);
  }));
  resident_.erase(std::string(key_id));
  return absl::OkStatus();
}

absl::StatusOr<CK_OBJECT_HANDLE> Pkcs11RootOfTrust::FindResidentLocked(
    absl::string_view key_id) {
  auto it = resident_.find(std::string(key_id));
  if (it != resident_.end()) return it->second;
  bool hex = key_id.size() == 32;
  for (char c : key_id) hex = hex && absl::ascii_isxdigit(static_cast<unsigned char>(c));
  if (!hex) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", key_id, "' is not a resident key id"));
  }
  std::string id = absl::HexStringToBytes(key_id);
  CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
  CK_ATTRIBUTE find[] = {{CKA_CLASS, &cls, sizeof(cls)},
                         {CKA_ID, id.data(), id.size()}};
  std::vector<CK_OBJECT_HANDLE> handles;
  KW_RETURN_IF_ERROR(FindObjectsLocked(find, 2, &handles));
  if (handles.empty()) {
    return absl::NotFoundError(
        absl::StrCat("the HSM holds no key object with id ", key_id));
  }
  resident_[std::string(key_id)] = handles[0];
  return handles[0];
}

absl::StatusOr<std::string> Pkcs11RootOfTrust::SealWith(
    FindKey find, const SecretData& material, absl::string_view aad) {
  KW_ASSIGN_OR_RETURN(std::string nonce, crypto::RandomBytes(kNonceSize));
  std::string out(kNonceSize + material.size() + kTagSize, '\0');
  std::memcpy(out.data(), nonce.data(), kNonceSize);
  std::lock_guard<std::mutex> lock(mu_);
  KW_RETURN_IF_ERROR(WithSessionLocked("C_Encrypt (seal)", [&]() -> CK_RV {
    auto key = find();
    if (!key.ok()) return CKR_KEY_HANDLE_INVALID;
    CK_GCM_PARAMS params = GcmParams(nonce, aad);
    CK_MECHANISM mech{CKM_AES_GCM, &params, sizeof(params)};
    CK_RV rv = f_->C_EncryptInit(session_, &mech, *key);
    if (rv != CKR_OK) return rv;
    CK_ULONG len = material.size() + kTagSize;
    rv = f_->C_Encrypt(session_, const_cast<uint8_t*>(material.data()),
                       material.size(),
                       reinterpret_cast<CK_BYTE_PTR>(out.data()) + kNonceSize,
                       &len);
    if (rv == CKR_OK && len != material.size() + kTagSize) {
      return CKR_GENERAL_ERROR;
    }
    return rv;
  }));
  return out;
}

absl::StatusOr<SecretData> Pkcs11RootOfTrust::UnsealWith(
    FindKey find, absl::string_view sealed, absl::string_view aad) {
  if (sealed.size() < kNonceSize + kTagSize) {
    return absl::InvalidArgumentError("sealed key material is too short");
  }
  std::string nonce(sealed.substr(0, kNonceSize));
  absl::string_view body = sealed.substr(kNonceSize);
  SecretData out(body.size());  // plaintext + room for the tag
  CK_ULONG len = out.size();
  std::lock_guard<std::mutex> lock(mu_);
  CK_RV last = CKR_OK;
  absl::Status s = WithSessionLocked("C_Decrypt (unseal)", [&]() -> CK_RV {
    auto key = find();
    if (!key.ok()) return CKR_KEY_HANDLE_INVALID;
    CK_GCM_PARAMS params = GcmParams(nonce, aad);
    CK_MECHANISM mech{CKM_AES_GCM, &params, sizeof(params)};
    CK_RV rv = f_->C_DecryptInit(session_, &mech, *key);
    if (rv != CKR_OK) return last = rv;
    len = out.size();
    return last = f_->C_Decrypt(
               session_,
               reinterpret_cast<CK_BYTE_PTR>(const_cast<char*>(body.data())),
               body.size(), out.data(), &len);
  });
  if (!s.ok()) {
    if (last == CKR_ENCRYPTED_DATA_INVALID || last == CKR_ENCRYPTED_DATA_LEN_RANGE ||
        last == CKR_FUNCTION_FAILED || last == CKR_GENERAL_ERROR ||
        last == CKR_DATA_INVALID) {
      return absl::InvalidArgumentError(
          "the HSM refused to unseal: the sealed key was modified, belongs "
          "to another key or key version, or was sealed by another root key");
    }
    return s;
  }
  if (len != body.size() - kTagSize) {
    return absl::InternalError("HSM returned an unexpected length");
  }
  out.Resize(len);
  return out;
}

}  // namespace keyward::hsm
