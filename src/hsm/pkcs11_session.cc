// Pkcs11RootOfTrust's session: finding the token, logging in, finding or
// creating the root key, recovering a lost session, and the health probe.
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "hsm/pkcs11_root_of_trust_impl.h"

namespace keyward::hsm {
namespace {

std::string Padded(const unsigned char* field, size_t size) {
  std::string s(reinterpret_cast<const char*>(field), size);
  return std::string(absl::StripTrailingAsciiWhitespace(s));
}

}  // namespace

metrics::Histogram& HsmTimer(const char* operation) {
  static auto& family = metrics::Global().HistogramFamily(
      "keyward_hsm_call_duration_seconds",
      "PKCS#11 operations (including the wait for the serialized session).", {"operation"});
  return family.With({operation});
}

Pkcs11RootOfTrust::~Pkcs11RootOfTrust() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (session_ != CK_INVALID_HANDLE) f_->C_CloseSession(session_);
  }
  ReleaseModule(options_.module_path);
}

absl::Status Pkcs11RootOfTrust::Connect() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    KW_RETURN_IF_ERROR(ConnectLocked(options_.create_root_key));
  }
  auto root = [this]() -> absl::StatusOr<CK_OBJECT_HANDLE> { return root_; };
  KW_ASSIGN_OR_RETURN(probe_sealed_,
                      SealWith(root, SecretData::CopyFrom(kProbePlaintext), kProbeAad));
  return absl::OkStatus();
}

absl::Status Pkcs11RootOfTrust::CheckHealth() {
  // /readyz and every /metrics scrape ask; the HSM is asked at most once a
  // second.
  std::lock_guard<std::mutex> health_lock(health_mu_);
  const absl::Time now = absl::Now();
  if (now - last_health_check_ < absl::Seconds(1) && !health_stale_.exchange(false)) {
    return last_health_;
  }
  last_health_check_ = now;
  last_health_ = ProbeHealth();
  return last_health_;
}

absl::Status Pkcs11RootOfTrust::ProbeHealth() {
  metrics::ScopedTimer timer(HsmTimer("health"));
  auto root = [this]() -> absl::StatusOr<CK_OBJECT_HANDLE> { return root_; };
  auto opened = UnsealWith(root, probe_sealed_, kProbeAad);
  if (!opened.ok()) {
    // Once more through a fresh session and root key handle: the token
    // may be back.
    absl::Status reconnected;
    {
      std::lock_guard<std::mutex> lock(mu_);
      reconnected = RecoverLocked();
    }
    if (reconnected.ok()) opened = UnsealWith(root, probe_sealed_, kProbeAad);
    if (!opened.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "the root key cannot be used: ",
          reconnected.ok() ? opened.status().message() : reconnected.message()));
    }
  }
  if (opened->AsStringView() != absl::string_view(kProbePlaintext)) {
    return absl::UnavailableError("the root key changed: the health probe does not open");
  }
  return absl::OkStatus();
}

absl::Status Pkcs11RootOfTrust::RecoverLocked() {
  health_stale_ = true;  // an operation saw the HSM fail: check again now
  absl::Status s = ConnectLocked(/*create_root=*/false);
  if (s.ok()) return s;
  if (!ReinitializeModule(options_.module_path).ok()) return s;
  session_ = CK_INVALID_HANDLE;  // gone with the module's state
  return ConnectLocked(/*create_root=*/false);
}

absl::Status Pkcs11RootOfTrust::ConnectLocked(bool create_root) {
  if (session_ != CK_INVALID_HANDLE) {
    f_->C_CloseSession(session_);
    session_ = CK_INVALID_HANDLE;
  }
  resident_.clear();
  CK_ULONG count = 0;
  CK_RV rv = f_->C_GetSlotList(CK_TRUE, nullptr, &count);
  if (rv != CKR_OK) return Pkcs11Error(rv, "C_GetSlotList");
  std::vector<CK_SLOT_ID> slots(count);
  rv = f_->C_GetSlotList(CK_TRUE, slots.data(), &count);
  if (rv != CKR_OK) return Pkcs11Error(rv, "C_GetSlotList");
  std::string seen;
  bool found = false;
  CK_TOKEN_INFO token;
  for (CK_ULONG i = 0; i < count; ++i) {
    if (f_->C_GetTokenInfo(slots[i], &token) != CKR_OK) continue;
    const std::string label = Padded(token.label, sizeof(token.label));
    absl::StrAppend(&seen, seen.empty() ? "" : ", ", "'", label, "'");
    if (label == options_.token_label) {
      slot_ = slots[i];
      found = true;
      break;
    }
  }
  if (!found) {
    return absl::NotFoundError(absl::StrCat(
        "no token labelled '", options_.token_label, "' in ",
        options_.module_path, " (tokens present: ",
        seen.empty() ? "none" : seen, ")"));
  }
  if (!info_.module.empty()) {
    // Reconnecting: Info() is read without the lock, so it is not rewritten.
    return OpenAndLogInLocked(create_root);
  }
  info_.module = options_.module_path;
  info_.token_label = options_.token_label;
  info_.manufacturer =
      Padded(token.manufacturerID, sizeof(token.manufacturerID));
  info_.model = Padded(token.model, sizeof(token.model));
  info_.software = absl::StrContains(info_.manufacturer, "SoftHSM") ||
                   absl::StrContains(info_.model, "SoftHSM");
  info_.root_key_label = options_.root_key_label;
  return OpenAndLogInLocked(create_root);
}

absl::Status Pkcs11RootOfTrust::OpenAndLogInLocked(bool create_root) {
  CK_RV rv = f_->C_OpenSession(slot_, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr,
                         nullptr, &session_);
  if (rv != CKR_OK) return Pkcs11Error(rv, "C_OpenSession");
  rv = f_->C_Login(session_, CKU_USER, const_cast<uint8_t*>(pin_.data()),
                   pin_.size());
  if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
    return Pkcs11Error(rv, absl::StrCat("C_Login to token '",
                                        options_.token_label, "'"));
  }
  return FindOrCreateRootLocked(create_root);
}

absl::Status Pkcs11RootOfTrust::FindOrCreateRootLocked(bool create) {
  CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
  const std::string& label = options_.root_key_label;
  CK_ATTRIBUTE find[] = {
      {CKA_CLASS, &cls, sizeof(cls)},
      {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
  };
  std::vector<CK_OBJECT_HANDLE> handles;
  KW_RETURN_IF_ERROR(FindObjectsLocked(find, 2, &handles));
  if (handles.size() > 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the token holds ", handles.size(), " keys labelled '", label,
        "'; exactly one root key is expected"));
  }
  if (handles.empty()) {
    if (!create) {
      return absl::NotFoundError(absl::StrCat(
          "no root key labelled '", label, "' in token '",
          options_.token_label, "' and creating one is disabled"));
    }
    CK_RV rv = GenerateAesKey(label, "", &root_);
    if (rv != CKR_OK) return Pkcs11Error(rv, "C_GenerateKey (root key)");
  } else {
    root_ = handles[0];
  }
  // Refuse a root key that could leave the token.
  CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE;
  CK_KEY_TYPE type = 0;
  CK_ULONG len = 0;
  CK_ATTRIBUTE attrs[] = {
      {CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
      {CKA_EXTRACTABLE, &extractable, sizeof(extractable)},
      {CKA_KEY_TYPE, &type, sizeof(type)},
      {CKA_VALUE_LEN, &len, sizeof(len)},
  };
  CK_RV rv = f_->C_GetAttributeValue(session_, root_, attrs, 4);
  if (rv != CKR_OK) return Pkcs11Error(rv, "C_GetAttributeValue (root key)");
  if (sensitive != CK_TRUE || extractable != CK_FALSE || type != CKK_AES ||
      len != 32) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the key labelled '", label,
        "' is not an AES-256, sensitive, non-extractable key; Keyward "
        "refuses it as a root key"));
  }
  return absl::OkStatus();
}

CK_RV Pkcs11RootOfTrust::GenerateAesKey(absl::string_view label,
                                        absl::string_view id,
                                        CK_OBJECT_HANDLE* out) {
  CK_MECHANISM mech{CKM_AES_KEY_GEN, nullptr, 0};
  CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
  CK_KEY_TYPE type = CKK_AES;
  CK_ULONG len = 32;
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  std::vector<CK_ATTRIBUTE> t = {
      {CKA_CLASS, &cls, sizeof(cls)},
      {CKA_KEY_TYPE, &type, sizeof(type)},
      {CKA_VALUE_LEN, &len, sizeof(len)},
      {CKA_TOKEN, &yes, sizeof(yes)},
      {CKA_PRIVATE, &yes, sizeof(yes)},
      {CKA_SENSITIVE, &yes, sizeof(yes)},
      {CKA_EXTRACTABLE, &no, sizeof(no)},
      {CKA_ENCRYPT, &yes, sizeof(yes)},
      {CKA_DECRYPT, &yes, sizeof(yes)},
      {CKA_WRAP, &no, sizeof(no)},
      {CKA_UNWRAP, &no, sizeof(no)},
      {CKA_SIGN, &no, sizeof(no)},
      {CKA_VERIFY, &no, sizeof(no)},
      {CKA_DERIVE, &no, sizeof(no)},
      {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
  };
  if (!id.empty()) {
    t.push_back({CKA_ID, const_cast<char*>(id.data()), id.size()});
  }
  return f_->C_GenerateKey(session_, &mech, t.data(), t.size(), out);
}

absl::Status Pkcs11RootOfTrust::FindObjectsLocked(
    CK_ATTRIBUTE* tmpl, CK_ULONG n, std::vector<CK_OBJECT_HANDLE>* out) {
  CK_RV rv = f_->C_FindObjectsInit(session_, tmpl, n);
  if (rv != CKR_OK) return Pkcs11Error(rv, "C_FindObjectsInit");
  CK_OBJECT_HANDLE batch[16];
  CK_ULONG got = 0;
  do {
    rv = f_->C_FindObjects(session_, batch, 16, &got);
    if (rv != CKR_OK) break;
    out->insert(out->end(), batch, batch + got);
  } while (got == 16);
  f_->C_FindObjectsFinal(session_);
  return rv == CKR_OK ? absl::OkStatus() : Pkcs11Error(rv, "C_FindObjects");
}

}  // namespace keyward::hsm
