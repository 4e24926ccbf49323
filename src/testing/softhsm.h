// A throwaway SoftHSMv2 token in a temporary directory, for tests that need a
// real PKCS#11 module: writes a softhsm2.conf, points SOFTHSM2_CONF at it,
// initializes a token with softhsm2-util and a PIN file (mode 0600), and
// removes everything on destruction.
#ifndef KEYWARD_TESTING_SOFTHSM_H_
#define KEYWARD_TESTING_SOFTHSM_H_

#include <string>

#include "absl/status/statusor.h"

namespace keyward::testing {

inline constexpr char kSoftHsmModule[] = "/usr/lib/softhsm/libsofthsm2.so";

class SoftHsmToken {
 public:
  // Errors: kUnavailable when SoftHSMv2 is not installed.
  static absl::StatusOr<SoftHsmToken*> Create(const std::string& label);
  ~SoftHsmToken();

  const std::string& dir() const { return dir_; }
  const std::string& label() const { return label_; }
  const std::string& pin_file() const { return pin_file_; }
  const std::string& conf() const { return conf_; }

 private:
  SoftHsmToken() = default;
  std::string dir_, label_, pin_file_, conf_;
};

}  // namespace keyward::testing

#endif  // KEYWARD_TESTING_SOFTHSM_H_
