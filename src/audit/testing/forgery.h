// What an attacker who can write the audit directory does (tests only):
// replace the records with `lines`, rebuild their chain, sign a checkpoint
// every 10 records with a key of its own, and put that key's public half
// in checkpoint-keys.pem for verifiers to find.
#ifndef KEYWARD_AUDIT_TESTING_FORGERY_H_
#define KEYWARD_AUDIT_TESTING_FORGERY_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace keyward::audit::testing {

absl::Status RewriteAndResign(const std::string& dir, std::vector<std::string> lines,
                              const std::string& environment);

}  // namespace keyward::audit::testing

#endif  // KEYWARD_AUDIT_TESTING_FORGERY_H_
