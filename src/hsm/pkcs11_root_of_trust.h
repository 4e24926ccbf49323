// RootOfTrust over any PKCS#11 v2.40 module (SoftHSMv2 in dev and tests, a
// network or PCIe HSM in production).  docs/decisions/0010 explains the
// session strategy: every call into the module is serialized on one session,
// because SoftHSMv2 2.6 crashes under concurrent calls into one token.
#ifndef KEYWARD_HSM_PKCS11_ROOT_OF_TRUST_H_
#define KEYWARD_HSM_PKCS11_ROOT_OF_TRUST_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "hsm/root_of_trust.h"

namespace keyward::hsm {

struct Pkcs11Options {
  std::string module_path;   // e.g. /usr/lib/softhsm/libsofthsm2.so
  std::string token_label;
  // The user PIN comes from a file (first line) or an environment variable;
  // never from a command-line argument.  Exactly one must be set.
  std::string pin_file;
  std::string pin_env;
  // The root key's CKA_LABEL; created inside the token if absent.
  std::string root_key_label;
  // Create the root key when it does not exist (first start).  When false, a
  // missing root key is an error (a production token must already hold it).
  bool create_root_key = true;
};

// Loads the module, logs in, and finds or creates the root key: AES-256,
// generated in the token, CKA_TOKEN, CKA_SENSITIVE, not extractable, usable
// only to encrypt/decrypt (seal) key material.
// Errors: kInvalidArgument (bad options), kNotFound (module, token or root
// key missing), kPermissionDenied (PIN rejected), kUnavailable.
[[nodiscard]] absl::StatusOr<std::unique_ptr<RootOfTrust>> OpenPkcs11(
    const Pkcs11Options& options);

// Reads a PIN from a file or environment variable as Pkcs11Options says.
[[nodiscard]] absl::StatusOr<SecretData> ReadPin(const Pkcs11Options& options);

}  // namespace keyward::hsm

#endif  // KEYWARD_HSM_PKCS11_ROOT_OF_TRUST_H_
