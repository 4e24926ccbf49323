// Shared by the field-level encryption commands (field_commands.cc,
// tenant_commands.cc).
#ifndef KEYWARD_CLI_FIELDS_CLI_H_
#define KEYWARD_CLI_FIELDS_CLI_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cli/cli.h"

namespace keyward::cli {

struct FieldArgs {
  std::string schema, db, table, id, tenant;
  std::vector<std::string> where;  // fields find: NAME=VALUE
  size_t limit = 0;
  int batch = 500;
  double rate = 0;
  bool dry_run = false, yes = false;
};

// `keyward tenant erase`.
absl::Status RunTenantErase(Globals& globals, const FieldArgs& args);

}  // namespace keyward::cli

#endif  // KEYWARD_CLI_FIELDS_CLI_H_
