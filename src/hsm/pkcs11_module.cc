// Loading a PKCS#11 module once per process (C_Initialize and C_Finalize
// reference counted), and naming its return values as status codes.
#include "hsm/pkcs11_module.h"

#include <dlfcn.h>

#include <map>

#include "absl/strings/str_cat.h"

namespace keyward::hsm {
namespace {

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

}  // namespace

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

}  // namespace keyward::hsm
