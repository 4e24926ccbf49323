// The key store's schema: each numbered migration's SQL, and applying them.
#include "keystore/sqlite_schema.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keystore/sqlite_statement.h"

namespace keyward::keystore {
namespace {

constexpr char kSchemaV1[] = R"sql(
CREATE TABLE store_meta (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  environment TEXT NOT NULL,
  created_us INTEGER NOT NULL
);
CREATE TABLE keys (
  name TEXT PRIMARY KEY,
  purpose INTEGER NOT NULL,
  suite INTEGER NOT NULL,
  environment TEXT NOT NULL,
  labels TEXT NOT NULL,
  rotation_period_s INTEGER NOT NULL,
  primary_version INTEGER NOT NULL,
  created_us INTEGER NOT NULL,
  updated_us INTEGER NOT NULL,
  revision INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE key_versions (
  key_name TEXT NOT NULL REFERENCES keys(name),
  version INTEGER NOT NULL,
  state INTEGER NOT NULL,
  protection INTEGER NOT NULL,
  sealed_kek BLOB,
  hsm_key_id TEXT,
  created_us INTEGER NOT NULL,
  destroy_after_us INTEGER,
  destroyed_us INTEGER,
  data_keys_issued INTEGER NOT NULL DEFAULT 0,
  decrypts INTEGER NOT NULL DEFAULT 0,
  last_used_us INTEGER,
  PRIMARY KEY (key_name, version)
) WITHOUT ROWID;
CREATE INDEX key_versions_pending_destruction
  ON key_versions (destroy_after_us) WHERE state = 4;
)sql";

}  // namespace

constexpr char kSchemaV3[] = R"sql(
ALTER TABLE key_versions ADD COLUMN last_decrypt_us INTEGER;
ALTER TABLE key_versions ADD COLUMN drill_sample BLOB;
CREATE TABLE data_set_reports (
  key_name TEXT NOT NULL,
  data_set TEXT NOT NULL,
  rows_per_version TEXT NOT NULL,
  rows_total INTEGER NOT NULL,
  reported_us INTEGER NOT NULL,
  reported_by TEXT NOT NULL,
  PRIMARY KEY (key_name, data_set)
) WITHOUT ROWID;
)sql";

constexpr char kSchemaV4[] = R"sql(
ALTER TABLE key_versions ADD COLUMN state_before_destruction INTEGER;
)sql";

constexpr char kSchemaV2[] = R"sql(
CREATE TABLE grants (
  id TEXT PRIMARY KEY,
  principal TEXT NOT NULL,
  key_pattern TEXT NOT NULL,
  operations TEXT NOT NULL,
  context TEXT NOT NULL,
  created_us INTEGER NOT NULL,
  expires_us INTEGER NOT NULL,
  revoked_us INTEGER,
  created_by TEXT NOT NULL,
  reason TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE sealed_secrets (
  name TEXT PRIMARY KEY,
  sealed BLOB NOT NULL
) WITHOUT ROWID;
)sql";

// A tenant's key under a Keyward key: sealed by the root key while active;
// an erased row keeps its times and who erased it, with sealed NULL, so
// the tenant can never get a new key silently.
constexpr char kSchemaV5[] = R"sql(
CREATE TABLE tenant_keys (
  key_name TEXT NOT NULL,
  tenant BLOB NOT NULL,
  sealed BLOB,
  created_us INTEGER,
  erased_us INTEGER,
  erased_by TEXT,
  PRIMARY KEY (key_name, tenant)
) WITHOUT ROWID;
)sql";

// Break-glass grants: each a JSON document (policy::BreakGlassGrant);
// `closed` once the record of its end is written.
constexpr char kSchemaV6[] = R"sql(
CREATE TABLE breakglass_grants (
  id TEXT PRIMARY KEY,
  requested_us INTEGER NOT NULL,
  closed INTEGER NOT NULL,
  grant_json TEXT NOT NULL
) WITHOUT ROWID;
)sql";

// A version declared compromised: when, why and by whom (never cleared).
constexpr char kSchemaV7[] = R"sql(
ALTER TABLE key_versions ADD COLUMN compromised_us INTEGER;
ALTER TABLE key_versions ADD COLUMN compromise_reason TEXT;
ALTER TABLE key_versions ADD COLUMN compromised_by TEXT;
)sql";

int UserVersion(sqlite3* db) {
  Statement s(db, "PRAGMA user_version");
  return s.Step() == SQLITE_ROW ? static_cast<int>(s.Int(0)) : -1;
}

absl::Status Migrate(sqlite3* db, const std::vector<Migration>& migrations) {
  const int current = UserVersion(db);
  const int latest = migrations.empty() ? 0 : migrations.back().number;
  if (current > latest) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the key store has schema version ", current,
        " but this build knows up to ", latest,
        "; upgrade keywardd (stores are never downgraded)"));
  }
  for (const Migration& m : migrations) {
    if (m.number <= current) continue;
    KW_RETURN_IF_ERROR(InTransaction(db, [&]() -> absl::Status {
      KW_RETURN_IF_ERROR(Exec(db, m.sql, absl::StrCat("migration ", m.number,
                                                      " (", m.description, ")")));
      const std::string pragma = absl::StrCat("PRAGMA user_version = ", m.number);
      return Exec(db, pragma.c_str(), "record schema version");
    }));
  }
  return absl::OkStatus();
}

const std::vector<Migration>& SqliteMigrations() {
  static const auto* migrations = new std::vector<Migration>{
      {1, "keys, key versions and store metadata", kSchemaV1},
      {2, "grants and sealed service secrets", kSchemaV2},
      {3, "last decrypt, rotation drill samples, data set reports", kSchemaV3},
      {4, "the state a version had before it was scheduled for destruction", kSchemaV4},
      {5, "tenant keys and tenant erasures", kSchemaV5},
      {6, "break-glass grants", kSchemaV6},
      {7, "compromised key versions", kSchemaV7},
  };
  return *migrations;
}

}  // namespace keyward::keystore
