// The key store's schema: where the database's version is read and the
// numbered migrations applied.
#ifndef KEYWARD_KEYSTORE_SQLITE_SCHEMA_H_
#define KEYWARD_KEYSTORE_SQLITE_SCHEMA_H_

#include <vector>

#include "absl/status/status.h"
#include "keystore/sqlite_key_store.h"

namespace keyward::keystore {

// PRAGMA user_version: the last migration applied, or -1 when unreadable.
int UserVersion(sqlite3* db);

// Applies the migrations newer than the database's version, each in its own
// transaction.  Errors: kFailedPrecondition when the database is newer than
// `migrations`; SQLite errors.
absl::Status Migrate(sqlite3* db, const std::vector<Migration>& migrations);

}  // namespace keyward::keystore

#endif  // KEYWARD_KEYSTORE_SQLITE_SCHEMA_H_
