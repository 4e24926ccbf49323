// `keyward tenant erase`: crypto-shredding one tenant of a field-encrypted
// data set.  keywardd destroys the tenant's key material first (that is
// what makes every copy of the data unreadable); then the tenant's wrapped
// data keys are deleted from the database.  A rerun after a failure in
// between finishes the job: keywardd reports the tenant already erased.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "appdb/database.h"
#include "base/status_macros.h"
#include "cli/fields_cli.h"
#include "fields/index_job.h"
#include "fields/key_vault.h"
#include "keyward/admin_client.h"
#include "keyward/errors.h"
#include "keyward/field_schema.h"
#include "nlohmann/json.hpp"

namespace keyward::cli {
namespace {

using Json = nlohmann::ordered_json;

struct Exposure {
  uint64_t data_keys = 0;  // wrapped data keys in the key table
  uint64_t rows = 0;       // rows of the tenant in the schema's tables
  uint64_t values = 0;     // encrypted (non-NULL) values in them
};

absl::StatusOr<Exposure> Count(appdb::Database& db, const FieldSchema& schema,
                               const std::string& tenant) {
  Exposure e;
  KW_ASSIGN_OR_RETURN(auto tables, db.ListTables());
  const bool has_keys = std::find(tables.begin(), tables.end(), fields::kKeyTable) != tables.end();
  if (has_keys) {
    KW_ASSIGN_OR_RETURN(auto n, db.Query(absl::StrCat("SELECT COUNT(*) FROM ", fields::kKeyTable,
                                                      " WHERE dataset = $1 AND tenant = $2"),
                                         {schema.dataset(), tenant}));
    e.data_keys = static_cast<uint64_t>(std::get<int64_t>(n[0][0]));
  }
  const std::string tc = appdb::Database::QuoteIdentifier(schema.tenant_column());
  for (const auto& [name, table] : schema.tables()) {
    if (std::find(tables.begin(), tables.end(), name) == tables.end()) continue;
    std::string counts = "COUNT(*)";
    for (const FieldRule* f : table.EncryptedFields()) {
      absl::StrAppend(&counts, ", COUNT(", appdb::Database::QuoteIdentifier(f->column), ")");
    }
    KW_ASSIGN_OR_RETURN(auto r, db.Query(absl::StrCat("SELECT ", counts, " FROM ",
                                                      appdb::Database::QuoteIdentifier(name),
                                                      " WHERE ", tc, " = $1"),
                                         {tenant}));
    e.rows += static_cast<uint64_t>(std::get<int64_t>(r[0][0]));
    for (size_t i = 1; i < r[0].size(); ++i) e.values += static_cast<uint64_t>(std::get<int64_t>(r[0][i]));
  }
  return e;
}

}  // namespace

absl::Status RunTenantErase(Globals& globals, const FieldArgs& a) {
  KW_ASSIGN_OR_RETURN(auto schema, FieldSchema::Load(a.schema));
  if (schema->tenant_column().empty()) {
    return UsageError(absl::StrCat("data set ", schema->dataset(),
                                   " has no tenants (its schema sets no tenant_column)"));
  }
  if (a.tenant.empty()) return UsageError("--tenant must not be empty");
  KW_ASSIGN_OR_RETURN(auto db, appdb::Database::Open(a.db));
  KW_ASSIGN_OR_RETURN(Exposure e, Count(*db, *schema, a.tenant));
  KW_ASSIGN_OR_RETURN(AdminClient * admin, globals.Admin());
  KW_ASSIGN_OR_RETURN(TenantErasure before,
                      admin->EraseTenant(schema->key(), a.tenant, {/*dry_run=*/true}));
  const bool already = before.state == TenantErasure::State::kErased;
  auto print = [&](bool erased) {
    if (globals.json) {
      std::printf("%s\n", Json{{"data_set", schema->dataset()},
                               {"key", schema->key()},
                               {"tenant", a.tenant},
                               {"dry_run", a.dry_run},
                               {"erased", erased},
                               {"already_erased", already},
                               {"data_keys", e.data_keys},
                               {"rows", e.rows},
                               {"encrypted_values", e.values}}
                              .dump()
                              .c_str());
    } else {
      std::printf("%s tenant %s of data set %s (key %s): %llu wrapped data key(s), %llu row(s), "
                  "%llu encrypted value(s)%s\n",
                  erased ? "erased" : "would erase", a.tenant.c_str(), schema->dataset().c_str(),
                  schema->key().c_str(), static_cast<unsigned long long>(e.data_keys),
                  static_cast<unsigned long long>(e.rows), static_cast<unsigned long long>(e.values),
                  erased ? " can no longer be decrypted by anyone"
                         : (already ? " (keywardd already erased its key material)"
                                    : " would become unreadable"));
    }
  };
  if (a.dry_run) {
    print(false);
    return absl::OkStatus();
  }
  if (!a.yes) {
    if (::isatty(STDIN_FILENO) == 0) {
      return UsageError("tenant erasure is irreversible: pass --yes to confirm when stdin is not "
                        "a terminal (try --dry-run first)");
    }
    std::fprintf(stderr,
                 "This destroys tenant %s's key material under key %s inside keywardd: %llu "
                 "encrypted value(s) in %llu row(s) of data set %s become unreadable, here and in "
                 "every copy and backup of this database, and so does everything else of this "
                 "tenant under key %s (other data sets, messages).\n"
                 "Type the tenant id to confirm: ",
                 a.tenant.c_str(), schema->key().c_str(),
                 static_cast<unsigned long long>(e.values), static_cast<unsigned long long>(e.rows),
                 schema->dataset().c_str(), schema->key().c_str());
    std::string typed;
    std::getline(std::cin, typed);
    if (typed != a.tenant) {
      return UsageError("confirmation did not match the tenant id; nothing was erased");
    }
  }
  // keywardd first: once its tenant key is gone, the rows below are dead
  // whatever happens next.
  KW_RETURN_IF_ERROR(admin->EraseTenant(schema->key(), a.tenant, {/*dry_run=*/false}).status());
  // Blind index values are keyed per data set, not per tenant: clear the
  // tenant's, or a reader of the class could test guesses against them.
  absl::StatusOr<uint64_t> cleared = fields::ClearTenantIndexValues(*db, *schema, a.tenant);
  if (!cleared.ok()) {
    return absl::Status(cleared.status().code(),
                        absl::StrCat("keywardd erased the tenant's key material (its data is "
                                     "unreadable), but clearing its rows' blind index values "
                                     "failed: ", cleared.status().message(),
                                     "; run the same command again to finish"));
  }
  KW_ASSIGN_OR_RETURN(auto vault, fields::KeyVault::Open(std::move(db)));
  absl::StatusOr<uint64_t> deleted = vault->DeleteTenant(schema->dataset(), a.tenant);
  if (!deleted.ok()) {
    return absl::Status(deleted.status().code(),
                        absl::StrCat("keywardd erased the tenant's key material (its data is "
                                     "unreadable), but deleting its wrapped keys from the "
                                     "database failed: ", deleted.status().message(),
                                     "; run the same command again to finish"));
  }
  print(true);
  return absl::OkStatus();
}

}  // namespace keyward::cli
