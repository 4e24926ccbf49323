// The PKCS#11 root of trust's entry points: reading the PIN, and opening a
// token as a RootOfTrust (pkcs11_root_of_trust_impl.h).
#include "hsm/pkcs11_root_of_trust.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "hsm/pkcs11_module.h"
#include "hsm/pkcs11_root_of_trust_impl.h"

namespace keyward::hsm {

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
