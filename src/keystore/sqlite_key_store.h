// SqliteKeyStore: the embedded key store.  One SQLite database file in WAL
// mode with synchronous=FULL (every commit is on disk before it returns),
// numbered schema migrations tracked in PRAGMA user_version, and a
// quick_check on open.  docs/operations.md covers backups.
#ifndef KEYWARD_KEYSTORE_SQLITE_KEY_STORE_H_
#define KEYWARD_KEYSTORE_SQLITE_KEY_STORE_H_

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "keystore/key_store.h"
#include "keystore/migration.h"

struct sqlite3;
struct sqlite3_stmt;

namespace keyward::keystore {

// The migrations of this build.
const std::vector<Migration>& SqliteMigrations();

class SqliteKeyStore final : public KeyStore {
 public:
  // Opens (creating if needed) the store at `path` for `environment`.
  // Errors: kFailedPrecondition (kEnvironmentMismatch) when the store
  // belongs to another environment; kDataLoss when the integrity check
  // fails; kFailedPrecondition when the schema is newer than this build;
  // kUnavailable when the file cannot be opened.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SqliteKeyStore>> Open(
      const std::string& path, const std::string& environment);
  // For tests of the migration mechanism.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SqliteKeyStore>>
  OpenWithMigrations(const std::string& path, const std::string& environment,
                     const std::vector<Migration>& migrations);
  ~SqliteKeyStore() override;

  absl::StatusOr<StoreInfo> GetInfo() override;
  absl::Status CreateKey(const Key& key) override;
  absl::StatusOr<Key> GetKey(absl::string_view name) override;
  absl::StatusOr<KeyPage> ListKeys(absl::string_view prefix, int page_size,
                                   absl::string_view page_token) override;
  absl::Status UpdateKey(const Key& key) override;
  absl::Status AddUsage(const std::vector<UsageDelta>& deltas) override;
  absl::StatusOr<uint64_t> AddDataKeysIssued(absl::string_view key_name, uint32_t version,
                                             int64_t delta, uint64_t limit) override;
  absl::Status Scrub() override;
  absl::StatusOr<std::vector<VersionRef>> ListDueDestructions(
      absl::Time now) override;
  absl::StatusOr<int64_t> CountKeys() override;
  absl::Status PutDataSetReport(const DataSetReport& report) override;
  absl::StatusOr<std::vector<DataSetReport>> ListDataSetReports(
      absl::string_view key_name) override;
  absl::Status CreateGrant(const policy::Grant& grant) override;
  absl::StatusOr<std::vector<policy::Grant>> ListGrants(absl::Time now,
                                                        bool include_inactive) override;
  absl::Status RevokeGrant(absl::string_view id, absl::Time when) override;
  absl::Status CreateBreakGlass(const policy::BreakGlassGrant& grant) override;
  absl::StatusOr<std::vector<policy::BreakGlassGrant>> ListBreakGlass(
      bool include_closed) override;
  absl::StatusOr<policy::BreakGlassGrant> UpdateBreakGlass(
      absl::string_view id,
      const std::function<absl::Status(policy::BreakGlassGrant&)>& update) override;
  absl::StatusOr<std::optional<TenantKeyRecord>> GetTenantKey(
      absl::string_view key_name, absl::string_view tenant) override;
  absl::Status PutTenantKey(const TenantKeyRecord& record) override;
  absl::StatusOr<std::optional<TenantKeyRecord>> EraseTenantKey(
      absl::string_view key_name, absl::string_view tenant, absl::Time when,
      absl::string_view by) override;
  absl::StatusOr<std::optional<std::string>> GetSealedSecret(
      absl::string_view name) override;
  absl::Status PutSealedSecret(absl::string_view name,
                               absl::string_view sealed) override;
  absl::Status SetSealedSecret(absl::string_view name, absl::string_view sealed) override;

  // Creates many keys in one transaction (imports, benchmarks).  All or
  // nothing.
  [[nodiscard]] absl::Status CreateKeys(const std::vector<Key>& keys);

 private:
  SqliteKeyStore(sqlite3* db, std::string path, std::string environment,
                 int schema_version, absl::Time created);
  absl::StatusOr<Key> LoadKeyLocked(absl::string_view name);
  // Writes the versions of `key` that differ from `stored` (all when null).
  absl::Status WriteVersionsLocked(const Key& key, const Key* stored);
  absl::Status CreateKeyLocked(const Key& key);
  // A cached prepared statement for `sql` (a string literal).  REQUIRES: mu_.
  sqlite3_stmt* Prepare(const char* sql);

  std::mutex mu_;
  sqlite3* const db_;  // GUARDED_BY(mu_)
  std::map<const char*, sqlite3_stmt*> statements_;  // GUARDED_BY(mu_)
  const std::string path_;
  const std::string environment_;
  const int schema_version_;
  const absl::Time created_;
};

}  // namespace keyward::keystore

#endif  // KEYWARD_KEYSTORE_SQLITE_KEY_STORE_H_
