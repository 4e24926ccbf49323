// A PKCS#11 module loaded once per process for all its users, and what its
// return values mean as status codes.
#ifndef KEYWARD_HSM_PKCS11_MODULE_H_
#define KEYWARD_HSM_PKCS11_MODULE_H_

#include <p11-kit/pkcs11.h>

#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace keyward::hsm {

// The status for `rv` returned by `what`: kPermissionDenied for PIN and login
// errors, kUnavailable when the token, session or object went away,
// kInternal otherwise.
absl::Status Pkcs11Error(CK_RV rv, absl::string_view what);

// True when `rv` says the session or the token behind it was lost, so a new
// session may succeed.
bool SessionLost(CK_RV rv);

// Loads and initializes the module at `path`, or shares it when another
// RootOfTrust already did: its function list, and the mutex every call into
// the module holds.  Errors: kNotFound (cannot load), kInvalidArgument (not a
// PKCS#11 module), C_Initialize's error.
absl::StatusOr<std::pair<CK_FUNCTION_LIST_PTR, std::shared_ptr<std::mutex>>>
AcquireModule(const std::string& path);

// Drops one user of the module; the last one finalizes it.
void ReleaseModule(const std::string& path);

// Finalizes and initializes the module again, so that it rescans its slots
// (a token that went away and came back is only seen after this).  Only when
// the caller is the module's one user: other users' sessions would die.
// The caller holds the module's call mutex.
absl::Status ReinitializeModule(const std::string& path);

}  // namespace keyward::hsm

#endif  // KEYWARD_HSM_PKCS11_MODULE_H_
