// Pkcs11RootOfTrust's signing keys: an ECDSA P-256 key pair made in the token
// on first use, its public key, and signatures with it.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "crypto/hash.h"
#include "crypto/signature.h"
#include "hsm/pkcs11_root_of_trust_impl.h"

namespace keyward::hsm {

absl::StatusOr<std::string> Pkcs11RootOfTrust::GetOrCreateSigningKey(
    absl::string_view label) {
  std::lock_guard<std::mutex> lock(mu_);
  CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE, pub = CK_INVALID_HANDLE;
  KW_RETURN_IF_ERROR(FindKeyPairLocked(label, &priv, &pub));
  if (priv == CK_INVALID_HANDLE || pub == CK_INVALID_HANDLE) {
    // prime256v1 as a DER OID.
    static const CK_BYTE kP256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    CK_MECHANISM mech{CKM_EC_KEY_PAIR_GEN, nullptr, 0};
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    std::string l(label);
    CK_ATTRIBUTE pub_t[] = {
        {CKA_EC_PARAMS, const_cast<CK_BYTE*>(kP256), sizeof(kP256)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_VERIFY, &yes, sizeof(yes)},
        {CKA_LABEL, l.data(), l.size()},
    };
    CK_ATTRIBUTE priv_t[] = {
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_SIGN, &yes, sizeof(yes)},
        {CKA_DECRYPT, &no, sizeof(no)},
        {CKA_DERIVE, &no, sizeof(no)},
        {CKA_LABEL, l.data(), l.size()},
    };
    KW_RETURN_IF_ERROR(WithSessionLocked("C_GenerateKeyPair (signing key)", [&]() {
      return f_->C_GenerateKeyPair(session_, &mech, pub_t, 4, priv_t, 8, &pub, &priv);
    }));
  }
  // CKA_EC_POINT is a DER OCTET STRING around the uncompressed point.
  CK_BYTE point[128];
  CK_ATTRIBUTE a{CKA_EC_POINT, point, sizeof(point)};
  CK_RV rv = f_->C_GetAttributeValue(session_, pub, &a, 1);
  if (rv != CKR_OK) return Pkcs11Error(rv, "C_GetAttributeValue (EC point)");
  absl::string_view der(reinterpret_cast<const char*>(point), a.ulValueLen);
  if (der.size() == 67 && der[0] == 0x04 && der[1] == 65) der.remove_prefix(2);
  return crypto::P256PublicKeyPemFromPoint(der);
}

absl::StatusOr<std::string> Pkcs11RootOfTrust::Sign(absl::string_view label,
                                                    absl::string_view data) {
  metrics::ScopedTimer timer(HsmTimer("sign"));
  const auto digest = crypto::Sha256(data);
  std::lock_guard<std::mutex> lock(mu_);
  CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE, pub = CK_INVALID_HANDLE;
  KW_RETURN_IF_ERROR(FindKeyPairLocked(label, &priv, &pub));
  if (priv == CK_INVALID_HANDLE) {
    return absl::NotFoundError(absl::StrCat("no signing key labelled '", label, "'"));
  }
  CK_BYTE sig[64];
  CK_ULONG len = sizeof(sig);
  KW_RETURN_IF_ERROR(WithSessionLocked("C_Sign (ECDSA)", [&]() -> CK_RV {
    CK_MECHANISM mech{CKM_ECDSA, nullptr, 0};
    CK_RV r = f_->C_SignInit(session_, &mech, priv);
    if (r != CKR_OK) return r;
    len = sizeof(sig);
    return f_->C_Sign(session_, const_cast<CK_BYTE*>(digest.data()), digest.size(), sig, &len);
  }));
  return crypto::EcdsaRawToDer(absl::string_view(reinterpret_cast<char*>(sig), len));
}

absl::Status Pkcs11RootOfTrust::FindKeyPairLocked(absl::string_view label,
                                                  CK_OBJECT_HANDLE* priv,
                                                  CK_OBJECT_HANDLE* pub) {
  for (CK_OBJECT_CLASS cls : {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY}) {
    CK_ATTRIBUTE find[] = {{CKA_CLASS, &cls, sizeof(cls)},
                           {CKA_LABEL, const_cast<char*>(label.data()), label.size()}};
    std::vector<CK_OBJECT_HANDLE> handles;
    KW_RETURN_IF_ERROR(FindObjectsLocked(find, 2, &handles));
    if (!handles.empty()) (cls == CKO_PRIVATE_KEY ? *priv : *pub) = handles[0];
  }
  return absl::OkStatus();
}

}  // namespace keyward::hsm
