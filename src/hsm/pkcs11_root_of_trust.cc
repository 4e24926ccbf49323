#include "hsm/pkcs11_root_of_trust.h"

#include <dlfcn.h>
#include <p11-kit/pkcs11.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "crypto/signature.h"
#include "metrics/metrics.h"

namespace keyward::hsm {
namespace {

// PKCS#11 call latency, including the wait for the serialized session.
metrics::Histogram& HsmTimer(const char* operation) {
  static auto& family = metrics::Global().HistogramFamily(
      "keyward_hsm_call_duration_seconds",
      "PKCS#11 operations (including the wait for the serialized session).", {"operation"});
  return family.With({operation});
}

constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;

const char* RvName(CK_RV rv) {
  switch (rv) {
    case CKR_OK: return "CKR_OK";
    case CKR_ARGUMENTS_BAD: return "CKR_ARGUMENTS_BAD";
    case CKR_DEVICE_ERROR: return "CKR_DEVICE_ERROR";
    case CKR_DEVICE_REMOVED: return "CKR_DEVICE_REMOVED";
    case CKR_ENCRYPTED_DATA_INVALID: return "CKR_ENCRYPTED_DATA_INVALID";
    case CKR_ENCRYPTED_DATA_LEN_RANGE: return "CKR_ENCRYPTED_DATA_LEN_RANGE";
    case CKR_FUNCTION_FAILED: return "CKR_FUNCTION_FAILED";
    case CKR_GENERAL_ERROR: return "CKR_GENERAL_ERROR";
    case CKR_KEY_HANDLE_INVALID: return "CKR_KEY_HANDLE_INVALID";
    case CKR_MECHANISM_INVALID: return "CKR_MECHANISM_INVALID";
    case CKR_MECHANISM_PARAM_INVALID: return "CKR_MECHANISM_PARAM_INVALID";
    case CKR_PIN_INCORRECT: return "CKR_PIN_INCORRECT";
    case CKR_PIN_LOCKED: return "CKR_PIN_LOCKED";
    case CKR_SESSION_CLOSED: return "CKR_SESSION_CLOSED";
    case CKR_SESSION_HANDLE_INVALID: return "CKR_SESSION_HANDLE_INVALID";
    case CKR_TOKEN_NOT_PRESENT: return "CKR_TOKEN_NOT_PRESENT";
    case CKR_USER_NOT_LOGGED_IN: return "CKR_USER_NOT_LOGGED_IN";
    case CKR_CRYPTOKI_NOT_INITIALIZED: return "CKR_CRYPTOKI_NOT_INITIALIZED";
    default: return "CKR_(other)";
  }
}

absl::Status Pkcs11Error(CK_RV rv, absl::string_view what) {
  std::string msg = absl::StrCat("HSM: ", what, " failed: ", RvName(rv), " (0x",
                                 absl::Hex(rv), ")");
  switch (rv) {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_LOCKED:
    case CKR_USER_NOT_LOGGED_IN:
      return absl::PermissionDeniedError(msg);
    case CKR_DEVICE_ERROR:
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_SESSION_CLOSED:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_CRYPTOKI_NOT_INITIALIZED:
    case CKR_OBJECT_HANDLE_INVALID:  // the token's objects went away with it
    case CKR_KEY_HANDLE_INVALID:
      return absl::UnavailableError(msg);
    default:
      return absl::InternalError(msg);
  }
}

bool SessionLost(CK_RV rv) {
  return rv == CKR_SESSION_CLOSED || rv == CKR_SESSION_HANDLE_INVALID ||
         rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT ||
         rv == CKR_USER_NOT_LOGGED_IN || rv == CKR_DEVICE_ERROR ||
         rv == CKR_CRYPTOKI_NOT_INITIALIZED || rv == CKR_OBJECT_HANDLE_INVALID ||
         rv == CKR_KEY_HANDLE_INVALID;
}

std::string Padded(const unsigned char* field, size_t size) {
  std::string s(reinterpret_cast<const char*>(field), size);
  return std::string(absl::StripTrailingAsciiWhitespace(s));
}

// A module may be opened by several RootOfTrust objects (tests, replicas of
// the same process); C_Initialize/C_Finalize are per process, so they are
// reference counted here.
struct LoadedModule {
  void* handle = nullptr;
  CK_FUNCTION_LIST_PTR functions = nullptr;
  int users = 0;
  // Every call into the module, from every RootOfTrust using it, holds this.
  std::shared_ptr<std::mutex> call_mu = std::make_shared<std::mutex>();
};
std::mutex modules_mu;
std::map<std::string, LoadedModule>& Modules() {
  static auto* modules = new std::map<std::string, LoadedModule>();
  return *modules;
}

absl::StatusOr<std::pair<CK_FUNCTION_LIST_PTR, std::shared_ptr<std::mutex>>>
AcquireModule(const std::string& path) {
  std::lock_guard<std::mutex> lock(modules_mu);
  LoadedModule& m = Modules()[path];
  if (m.users > 0) {
    ++m.users;
    return std::make_pair(m.functions, m.call_mu);
  }
  m.handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (m.handle == nullptr) {
    const char* err = ::dlerror();
    Modules().erase(path);
    return absl::NotFoundError(absl::StrCat(
        "cannot load the PKCS#11 module ", path, ": ", err ? err : "unknown",
        " (check hsm.module in the config)"));
  }
  auto get_list = reinterpret_cast<CK_C_GetFunctionList>(
      ::dlsym(m.handle, "C_GetFunctionList"));
  CK_FUNCTION_LIST_PTR functions = nullptr;
  if (get_list == nullptr || get_list(&functions) != CKR_OK ||
      functions == nullptr) {
    ::dlclose(m.handle);
    Modules().erase(path);
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a PKCS#11 module (no C_GetFunctionList)"));
  }
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  CK_RV rv = functions->C_Initialize(&args);
  if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    ::dlclose(m.handle);
    Modules().erase(path);
    return Pkcs11Error(rv, "C_Initialize");
  }
  m.functions = functions;
  m.users = 1;
  return std::make_pair(functions, m.call_mu);
}

void ReleaseModule(const std::string& path) {
  std::lock_guard<std::mutex> lock(modules_mu);
  auto it = Modules().find(path);
  if (it == Modules().end() || --it->second.users > 0) return;
  it->second.functions->C_Finalize(nullptr);
  // The module stays mapped: some modules register atexit handlers.
  Modules().erase(it);
}

// Finalizes and initializes the module again, so that it rescans its slots
// (a token that went away and came back is only seen after this).  Only when
// the caller is the module's one user: other users' sessions would die.
// The caller holds the module's call mutex.
absl::Status ReinitializeModule(const std::string& path) {
  std::lock_guard<std::mutex> lock(modules_mu);
  auto it = Modules().find(path);
  if (it == Modules().end()) return absl::InternalError("module not loaded");
  if (it->second.users != 1) {
    return absl::FailedPreconditionError("the PKCS#11 module is shared; not reinitializing it");
  }
  it->second.functions->C_Finalize(nullptr);
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  CK_RV rv = it->second.functions->C_Initialize(&args);
  if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    return Pkcs11Error(rv, "C_Initialize (reinitializing the module)");
  }
  return absl::OkStatus();
}

class Pkcs11RootOfTrust final : public RootOfTrust {
 public:
  Pkcs11RootOfTrust(Pkcs11Options options, CK_FUNCTION_LIST_PTR f,
                    std::shared_ptr<std::mutex> module_mu, SecretData pin)
      : options_(std::move(options)),
        f_(f),
        pin_(std::move(pin)),
        module_mu_(std::move(module_mu)),
        mu_(*module_mu_) {}

  ~Pkcs11RootOfTrust() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (session_ != CK_INVALID_HANDLE) f_->C_CloseSession(session_);
    }
    ReleaseModule(options_.module_path);
  }

  // Finds the token, opens the session, logs in, finds or creates the root,
  // and seals the health probe.
  absl::Status Connect() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      KW_RETURN_IF_ERROR(ConnectLocked(options_.create_root_key));
    }
    auto root = [this]() -> absl::StatusOr<CK_OBJECT_HANDLE> { return root_; };
    KW_ASSIGN_OR_RETURN(probe_sealed_,
                        SealWith(root, SecretData::CopyFrom(kProbePlaintext), kProbeAad));
    return absl::OkStatus();
  }

  HsmInfo Info() const override { return info_; }

  absl::StatusOr<SecretData> GenerateRandom(size_t size) override {
    metrics::ScopedTimer timer(HsmTimer("random"));
    SecretData out(size);
    KW_RETURN_IF_ERROR(WithSession("C_GenerateRandom", [&]() {
      return f_->C_GenerateRandom(session_, out.data(), size);
    }));
    return out;
  }

  absl::StatusOr<std::string> Seal(const SecretData& material,
                                   absl::string_view aad) override {
    metrics::ScopedTimer timer(HsmTimer("seal"));
    return SealWith(
        [this]() -> absl::StatusOr<CK_OBJECT_HANDLE> { return root_; },
        material, aad);
  }

  absl::StatusOr<SecretData> Unseal(absl::string_view sealed,
                                    absl::string_view aad) override {
    metrics::ScopedTimer timer(HsmTimer("unseal"));
    return UnsealWith(
        [this]() -> absl::StatusOr<CK_OBJECT_HANDLE> { return root_; },
        sealed, aad);
  }

  absl::StatusOr<std::string> CreateResidentKey(absl::string_view label) override {
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

  absl::StatusOr<std::string> ResidentSeal(absl::string_view key_id,
                                           const SecretData& material,
                                           absl::string_view aad) override {
    metrics::ScopedTimer timer(HsmTimer("resident_seal"));
    return SealWith([&]() { return FindResidentLocked(key_id); }, material,
                    aad);
  }

  absl::StatusOr<SecretData> ResidentUnseal(absl::string_view key_id,
                                            absl::string_view sealed,
                                            absl::string_view aad) override {
    metrics::ScopedTimer timer(HsmTimer("resident_unseal"));
    return UnsealWith([&]() { return FindResidentLocked(key_id); }, sealed,
                      aad);
  }

  absl::Status DestroyResidentKey(absl::string_view key_id) override {
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

  absl::StatusOr<std::string> GetOrCreateSigningKey(absl::string_view label) override {
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

  absl::StatusOr<std::string> Sign(absl::string_view label, absl::string_view data) override {
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

  absl::Status CheckHealth() override {
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

 private:
  // A session can look fine while the token cannot work (its storage gone,
  // a network HSM partitioned): open the probe sealed at start with the root
  // key, which also proves the root key is still the same key.
  absl::Status ProbeHealth() {
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

  // A new session; failing that, a rescan of the module first (a token
  // that went away and came back is only seen after one).  Never creates a
  // root key: a blank token put in its place must not become the root.
  absl::Status RecoverLocked() {
    health_stale_ = true;  // an operation saw the HSM fail: check again now
    absl::Status s = ConnectLocked(/*create_root=*/false);
    if (s.ok()) return s;
    if (!ReinitializeModule(options_.module_path).ok()) return s;
    session_ = CK_INVALID_HANDLE;  // gone with the module's state
    return ConnectLocked(/*create_root=*/false);
  }

  absl::Status ConnectLocked(bool create_root) {
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

  absl::Status OpenAndLogInLocked(bool create_root) {
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

  absl::Status FindOrCreateRootLocked(bool create) {
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

  // AES-256 inside the token, never leaving it, usable only to encrypt and
  // decrypt (seal) key material.
  CK_RV GenerateAesKey(absl::string_view label, absl::string_view id,
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

  absl::Status FindObjectsLocked(CK_ATTRIBUTE* tmpl, CK_ULONG n,
                                 std::vector<CK_OBJECT_HANDLE>* out) {
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

  absl::Status FindKeyPairLocked(absl::string_view label, CK_OBJECT_HANDLE* priv,
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

  absl::StatusOr<CK_OBJECT_HANDLE> FindResidentLocked(absl::string_view key_id) {
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

  template <typename FindKey>
  absl::StatusOr<std::string> SealWith(FindKey find, const SecretData& material,
                                       absl::string_view aad) {
    KW_ASSIGN_OR_RETURN(std::string nonce, crypto::RandomBytes(kNonceSize));
    std::string out(kNonceSize + material.size() + kTagSize, '\0');
    std::memcpy(out.data(), nonce.data(), kNonceSize);
    std::lock_guard<std::mutex> lock(mu_);
    KW_RETURN_IF_ERROR(WithSessionLocked("C_Encrypt (seal)", [&]() -> CK_RV {
      auto key = find();
      if (!key.ok()) return CKR_KEY_HANDLE_INVALID;
      CK_GCM_PARAMS params{};
      params.pIv = reinterpret_cast<CK_BYTE_PTR>(nonce.data());
      params.ulIvLen = kNonceSize;
      params.ulIvBits = kNonceSize * 8;
      params.pAAD = reinterpret_cast<CK_BYTE_PTR>(const_cast<char*>(aad.data()));
      params.ulAADLen = aad.size();
      params.ulTagBits = kTagSize * 8;
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

  template <typename FindKey>
  absl::StatusOr<SecretData> UnsealWith(FindKey find, absl::string_view sealed,
                                        absl::string_view aad) {
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
      CK_GCM_PARAMS params{};
      params.pIv = reinterpret_cast<CK_BYTE_PTR>(nonce.data());
      params.ulIvLen = kNonceSize;
      params.ulIvBits = kNonceSize * 8;
      params.pAAD = reinterpret_cast<CK_BYTE_PTR>(const_cast<char*>(aad.data()));
      params.ulAADLen = aad.size();
      params.ulTagBits = kTagSize * 8;
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

  // Runs `op` (which returns a CK_RV) under the lock, reconnecting once if
  // the session was lost.
  template <typename Op>
  absl::Status WithSession(absl::string_view what, Op op) {
    std::lock_guard<std::mutex> lock(mu_);
    return WithSessionLocked(what, op);
  }

  template <typename Op>
  absl::Status WithSessionLocked(absl::string_view what, Op op) {
    CK_RV rv = op();
    if (rv != CKR_OK && SessionLost(rv)) {
      if (RecoverLocked().ok()) rv = op();
    }
    return rv == CKR_OK ? absl::OkStatus() : Pkcs11Error(rv, what);
  }

  const Pkcs11Options options_;
  CK_FUNCTION_LIST_PTR const f_;
  const SecretData pin_;
  HsmInfo info_;
  // Serializes every call into the module, shared by all users of it
  // (docs/decisions/0010).
  const std::shared_ptr<std::mutex> module_mu_;
  std::mutex& mu_;
  CK_SLOT_ID slot_ = 0;
  CK_SESSION_HANDLE session_ = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE root_ = CK_INVALID_HANDLE;
  std::map<std::string, CK_OBJECT_HANDLE> resident_;
  // The health probe: a known value sealed with the root key at start.
  static constexpr char kProbePlaintext[] = "keyward health probe";
  static constexpr char kProbeAad[] = "keyward-health-probe";
  std::string probe_sealed_;
  std::mutex health_mu_;
  std::atomic<bool> health_stale_{false};
  absl::Time last_health_check_ = absl::InfinitePast();
  absl::Status last_health_;
};

}  // namespace

absl::StatusOr<SecretData> ReadPin(const Pkcs11Options& options) {
  if (options.pin_file.empty() == options.pin_env.empty()) {
    return absl::InvalidArgumentError(
        "set exactly one of hsm.pin_file and hsm.pin_env (a PIN is never "
        "taken from the command line)");
  }
  std::string pin;
  if (!options.pin_env.empty()) {
    const char* value = std::getenv(options.pin_env.c_str());
    if (value == nullptr || *value == '\0') {
      return absl::NotFoundError(absl::StrCat(
          "the HSM PIN variable ", options.pin_env, " is not set"));
    }
    pin = value;
  } else {
    struct stat st;
    if (::stat(options.pin_file.c_str(), &st) != 0) {
      return absl::NotFoundError(absl::StrCat("cannot read the HSM PIN file ",
                                              options.pin_file));
    }
    if ((st.st_mode & 077) != 0) {
      return absl::PermissionDeniedError(absl::StrCat(
          "the HSM PIN file ", options.pin_file,
          " is readable by other users; run: chmod 600 ", options.pin_file));
    }
    std::ifstream in(options.pin_file);
    std::getline(in, pin);
    while (!pin.empty() && (pin.back() == '\r' || pin.back() == ' ')) {
      pin.pop_back();
    }
  }
  if (pin.empty()) return absl::InvalidArgumentError("the HSM PIN is empty");
  SecretData out = SecretData::CopyFrom(pin);
  std::fill(pin.begin(), pin.end(), '\0');
  return out;
}

absl::StatusOr<std::unique_ptr<RootOfTrust>> OpenPkcs11(
    const Pkcs11Options& options) {
  if (options.module_path.empty() || options.token_label.empty() ||
      options.root_key_label.empty()) {
    return absl::InvalidArgumentError(
        "the HSM needs a module path, a token label and a root key label");
  }
  KW_ASSIGN_OR_RETURN(SecretData pin, ReadPin(options));
  KW_ASSIGN_OR_RETURN(auto module, AcquireModule(options.module_path));
  auto rot = std::make_unique<Pkcs11RootOfTrust>(options, module.first,
                                                 std::move(module.second),
                                                 std::move(pin));
  KW_RETURN_IF_ERROR(rot->Connect());
  return rot;
}

}  // namespace keyward::hsm
