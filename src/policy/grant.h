// A grant: a time-limited, operation- and context-scoped permission that a
// key administrator gives one principal.  Stored in the key store, evaluated
// by policy::Policy after the rules (grants only allow; deny rules win).
#ifndef KEYWARD_POLICY_GRANT_H_
#define KEYWARD_POLICY_GRANT_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "keyward/keyring.h"

namespace keyward::policy {

// A time-limited permission given to one principal (stored in the key
// store, managed through keywardd).  Grants only allow; deny rules still win.
struct Grant {
  std::string id;
  std::string principal;
  std::string key;  // name or glob
  std::vector<std::string> operations;
  EncryptionContext context;  // each pair must be present and equal
  absl::Time created;
  absl::Time expires;
  std::optional<absl::Time> revoked;
  std::string created_by;
  std::string reason;
};

}  // namespace keyward::policy

#endif  // KEYWARD_POLICY_GRANT_H_
