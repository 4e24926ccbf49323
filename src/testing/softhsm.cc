#include "testing/softhsm.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "testing/subprocess.h"

namespace keyward::testing {

absl::StatusOr<SoftHsmToken*> SoftHsmToken::Create(const std::string& label) {
  if (::access(kSoftHsmModule, R_OK) != 0 ||
      ::access("/usr/bin/softhsm2-util", X_OK) != 0) {
    return absl::UnavailableError(
        "SoftHSMv2 is not installed (scripts/install-deps installs softhsm2)");
  }
  auto* token = new SoftHsmToken();
  char tmpl[] = "/tmp/keyward-softhsm-XXXXXX";
  token->dir_ = ::mkdtemp(tmpl);
  token->label_ = label;
  const std::string tokens = token->dir_ + "/tokens";
  ::mkdir(tokens.c_str(), 0700);
  token->conf_ = token->dir_ + "/softhsm2.conf";
  std::ofstream(token->conf_) << "directories.tokendir = " << tokens
                              << "\nobjectstore.backend = file\n"
                                 "log.level = ERROR\nslots.removable = false\n";
  ::setenv("SOFTHSM2_CONF", token->conf_.c_str(), 1);
  const std::string pin = "keyward-test-pin";
  ProcessResult r = RunProcess(
      {"/usr/bin/softhsm2-util", "--init-token", "--free", "--label", label,
       "--pin", pin, "--so-pin", "keyward-test-so-pin"},
      "", {"SOFTHSM2_CONF=" + token->conf_});
  if (r.exit_code != 0) {
    std::string err = r.err;
    delete token;
    return absl::UnavailableError(
        absl::StrCat("softhsm2-util --init-token failed: ", err));
  }
  token->pin_file_ = token->dir_ + "/pin";
  std::ofstream(token->pin_file_) << pin << "\n";
  ::chmod(token->pin_file_.c_str(), 0600);
  return token;
}

SoftHsmToken::~SoftHsmToken() {
  if (!dir_.empty()) {
    std::string cmd = "rm -rf '" + dir_ + "'";
    [[maybe_unused]] int rc = std::system(cmd.c_str());
  }
}

}  // namespace keyward::testing
