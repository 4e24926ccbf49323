#include "keystore/postgres_schema.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "keystore/postgres_connection_pool.h"
#include "keystore/postgres_key_store.h"
#include "keystore/store_common.h"

namespace keyward::keystore {
namespace {

// Names are compared and ordered byte by byte (COLLATE "C"), whatever the
// database's locale, so that pages and prefixes mean what they mean in
// SQLite.  Times are microseconds since the epoch, as in SQLite, except the
// leases', which the database's own clock sets.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE keyward_store_meta (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  environment TEXT NOT NULL,
  created_us BIGINT NOT NULL
);
CREATE TABLE keyward_keys (
  name TEXT COLLATE "C" PRIMARY KEY,
  purpose INTEGER NOT NULL,
  suite INTEGER NOT NULL,
  environment TEXT NOT NULL,
  labels TEXT NOT NULL,
  rotation_period_s BIGINT NOT NULL,
  primary_version BIGINT NOT NULL,
  created_us BIGINT NOT NULL,
  updated_us BIGINT NOT NULL,
  revision BIGINT NOT NULL
);
CREATE TABLE keyward_key_versions (
  key_name TEXT COLLATE "C" NOT NULL REFERENCES keyward_keys (name),
  version BIGINT NOT NULL,
  state INTEGER NOT NULL,
  protection INTEGER NOT NULL,
  sealed_kek BYTEA,
  hsm_key_id TEXT,
  created_us BIGINT NOT NULL,
  destroy_after_us BIGINT,
  destroyed_us BIGINT,
  data_keys_issued BIGINT NOT NULL DEFAULT 0,
  decrypts BIGINT NOT NULL DEFAULT 0,
  last_used_us BIGINT,
  last_decrypt_us BIGINT,
  drill_sample BYTEA,
  state_before_destruction INTEGER,
  PRIMARY KEY (key_name, version)
);
CREATE INDEX keyward_key_versions_pending_destruction
  ON keyward_key_versions (destroy_after_us) WHERE state = 4;
CREATE TABLE keyward_grants (
  id TEXT PRIMARY KEY,
  principal TEXT NOT NULL,
  key_pattern TEXT NOT NULL,
  operations TEXT NOT NULL,
  context TEXT NOT NULL,
  created_us BIGINT NOT NULL,
  expires_us BIGINT NOT NULL,
  revoked_us BIGINT,
  created_by TEXT NOT NULL,
  reason TEXT NOT NULL
);
CREATE TABLE keyward_sealed_secrets (
  name TEXT PRIMARY KEY,
  sealed BYTEA NOT NULL
);
CREATE TABLE keyward_data_set_reports (
  key_name TEXT COLLATE "C" NOT NULL,
  data_set TEXT COLLATE "C" NOT NULL,
  rows_per_version TEXT NOT NULL,
  rows_total BIGINT NOT NULL,
  reported_us BIGINT NOT NULL,
  reported_by TEXT NOT NULL,
  PRIMARY KEY (key_name, data_set)
);
CREATE TABLE keyward_tenant_keys (
  key_name TEXT COLLATE "C" NOT NULL,
  tenant BYTEA NOT NULL,
  sealed BYTEA,
  created_us BIGINT,
  erased_us BIGINT,
  erased_by TEXT,
  PRIMARY KEY (key_name, tenant)
);
CREATE TABLE keyward_leases (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  fencing_token BIGINT NOT NULL,
  expires TIMESTAMPTZ NOT NULL
)
)sql";

// Break-glass grants: each a JSON document (policy::BreakGlassGrant);
// `closed` once the record of its end is written.
constexpr char kSchemaV2[] = R"sql(
CREATE TABLE keyward_breakglass_grants (
  id TEXT PRIMARY KEY,
  requested_us BIGINT NOT NULL,
  closed INTEGER NOT NULL,
  grant_json TEXT NOT NULL
)
)sql";

// A version declared compromised: when, why and by whom (never cleared).
constexpr char kSchemaV3[] = R"sql(
ALTER TABLE keyward_key_versions ADD COLUMN compromised_us BIGINT;
ALTER TABLE keyward_key_versions ADD COLUMN compromise_reason TEXT;
ALTER TABLE keyward_key_versions ADD COLUMN compromised_by TEXT
)sql";

}  // namespace

const std::vector<Migration>& PostgresMigrations() {
  static const auto* migrations = new std::vector<Migration>{
      {1, "keys, versions, grants, secrets, data set reports, tenant keys, leases", kSchemaV1},
      {2, "break-glass grants", kSchemaV2},
      {3, "compromised key versions", kSchemaV3},
  };
  return *migrations;
}

namespace internal {
namespace {

// pg_advisory_xact_lock's key for the key store's schema (any constant no
// other part of Keyward uses: "kwschema" in ASCII).
constexpr char kSchemaLock[] = "SELECT pg_advisory_xact_lock(7741794853771012449)";

// The statements of a migration, which runs them one by one (prepared
// statements hold one command each).  Migrations contain no ';' in strings.
std::vector<std::string> Statements(const char* sql) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(sql, ';')) {
    part = absl::StripAsciiWhitespace(part);
    if (!part.empty()) out.emplace_back(part);
  }
  return out;
}

}  // namespace

absl::StatusOr<SchemaState> MigrateAndCheckEnvironment(appdb::Database& db,
                                                       const std::vector<Migration>& migrations,
                                                       const std::string& environment,
                                                       const std::string& where) {
  KW_RETURN_IF_ERROR(Query(db, kSchemaLock).status());
  KW_RETURN_IF_ERROR(Execute(db,
                             "CREATE TABLE IF NOT EXISTS keyward_key_store_schema ("
                             "version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
                             "applied TIMESTAMPTZ NOT NULL DEFAULT now())")
                         .status());
  KW_ASSIGN_OR_RETURN(auto rows,
                      Query(db, "SELECT COALESCE(MAX(version), 0)::bigint "
                                "FROM keyward_key_store_schema"));
  SchemaState state;
  state.version = rows.empty() ? 0 : static_cast<int>(SqlRow(rows[0]).Int(0));
  const int latest = migrations.empty() ? 0 : migrations.back().number;
  if (state.version > latest) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the key store ", where, " has schema version ", state.version,
        " but this build knows up to ", latest, "; upgrade keywardd (stores are never downgraded)"));
  }
  for (const Migration& m : migrations) {
    if (m.number <= state.version) continue;
    for (const std::string& statement : Statements(m.sql)) {
      auto done = Execute(db, statement);
      if (!done.ok()) {
        return absl::Status(done.status().code(),
                            absl::StrCat("migration ", m.number, " (", m.description,
                                         "): ", done.status().message()));
      }
    }
    KW_RETURN_IF_ERROR(Execute(db,
                               "INSERT INTO keyward_key_store_schema (version, description) "
                               "VALUES ($1, $2)",
                               SqlParams().Int(m.number).Text(m.description))
                           .status());
    state.version = m.number;
  }

  KW_ASSIGN_OR_RETURN(
      auto meta, Query(db, "SELECT environment, created_us FROM keyward_store_meta WHERE id = 1"));
  if (meta.empty()) {
    state.created = absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
    KW_RETURN_IF_ERROR(Execute(db,
                               "INSERT INTO keyward_store_meta (id, environment, created_us) "
                               "VALUES (1, $1, $2)",
                               SqlParams().Text(environment).Time(state.created))
                           .status());
    return state;
  }
  const SqlRow row(meta[0]);
  state.created = row.Time(1);
  KW_RETURN_IF_ERROR(internal::CheckStoreEnvironment(where, row.Text(0), environment));
  return state;
}

}  // namespace internal
}  // namespace keyward::keystore
