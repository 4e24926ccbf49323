// Test support: every KeyStore implementation by name, for the contract
// tests that run against each ("memory", "sqlite", "postgres").
#ifndef KEYWARD_KEYSTORE_KEY_STORE_FIXTURE_H_
#define KEYWARD_KEYSTORE_KEY_STORE_FIXTURE_H_

#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keystore/memory_key_store.h"
#include "keystore/postgres_key_store.h"
#include "keystore/sqlite_key_store.h"
#include "testing/postgres_server.h"
#include "testing/subprocess.h"

namespace keyward::keystore {

// A key of environment "dev" with one enabled version sealed as "sealed".
inline Key SimpleTestKey(const std::string& name) {
  Key key;
  key.name = name;
  key.environment = "dev";
  key.primary_version = 1;
  key.created = key.updated = absl::FromUnixSeconds(1'700'000'000);
  KeyVersion v;
  v.version = 1;
  v.sealed_kek = "sealed";
  v.created = key.created;
  key.versions.push_back(v);
  return key;
}

// A new, empty database on the test binary's PostgreSQL server; its URL.
inline absl::StatusOr<std::string> FreshPostgresDatabase() {
  static std::atomic<int> next{0};
  KW_ASSIGN_OR_RETURN(testing::PostgresServer * server, testing::SharedPostgresServer());
  return server->CreateDatabase(absl::StrCat("keystore_", ::getpid(), "_", next++));
}

// A new store of `backend` for environment "dev" (SQLite's file in `dir`).
inline absl::StatusOr<std::unique_ptr<KeyStore>> OpenTestStore(
    const std::string& backend, const ::keyward::testing::TempDir& dir) {
  if (backend == "memory") return std::make_unique<MemoryKeyStore>("dev");
  if (backend == "sqlite") {
    KW_ASSIGN_OR_RETURN(auto store, SqliteKeyStore::Open(dir.File("keys.db"), "dev"));
    return std::unique_ptr<KeyStore>(std::move(store));
  }
  KW_ASSIGN_OR_RETURN(std::string url, FreshPostgresDatabase());
  KW_ASSIGN_OR_RETURN(auto store, PostgresKeyStore::Open(url, "dev"));
  return std::unique_ptr<KeyStore>(std::move(store));
}

}  // namespace keyward::keystore

#endif  // KEYWARD_KEYSTORE_KEY_STORE_FIXTURE_H_
