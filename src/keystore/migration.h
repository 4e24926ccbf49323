// A numbered schema step of a key store (SQLite, PostgreSQL).
#ifndef KEYWARD_KEYSTORE_MIGRATION_H_
#define KEYWARD_KEYSTORE_MIGRATION_H_

namespace keyward::keystore {

// Applied in order, exactly once; the store records the last number
// applied (SQLite: PRAGMA user_version; PostgreSQL: a schema table).
struct Migration {
  int number;
  const char* description;
  const char* sql;
};

}  // namespace keyward::keystore

#endif  // KEYWARD_KEYSTORE_MIGRATION_H_
