// The PostgreSQL key store's schema: its numbered migrations, applied at
// Open under an advisory lock so that replicas starting together agree,
// and the environment the store was created for.
#ifndef KEYWARD_KEYSTORE_POSTGRES_SCHEMA_H_
#define KEYWARD_KEYSTORE_POSTGRES_SCHEMA_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "appdb/database.h"
#include "keystore/migration.h"

namespace keyward::keystore::internal {

struct SchemaState {
  int version = 0;
  absl::Time created;
};

// Applies the migrations newer than the database's (all in the caller's
// transaction, after taking the schema's transaction-level advisory lock),
// then records `environment` in a new store or checks it in an existing
// one.  `where` names the database in messages.  Errors:
// kFailedPrecondition when the schema is newer than `migrations`, or
// (kEnvironmentMismatch) when the store belongs to another environment;
// database errors.
absl::StatusOr<SchemaState> MigrateAndCheckEnvironment(appdb::Database& db,
                                                       const std::vector<Migration>& migrations,
                                                       const std::string& environment,
                                                       const std::string& where);

}  // namespace keyward::keystore::internal

#endif  // KEYWARD_KEYSTORE_POSTGRES_SCHEMA_H_
