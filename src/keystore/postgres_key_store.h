// PostgresKeyStore: the key store of several keywardd replicas sharing one
// PostgreSQL database (docs/ha.md), through libpq.
//
// Connections: a small pool (PostgresKeyStoreOptions::connections), each
// connection used by one thread at a time, opened on first use.  The URL
// may list several hosts (postgresql://u@db1:5432,db2:5432/keyward); the
// store connects to the one that accepts writes (target_session_attrs =
// read-write unless the URL says otherwise), so after a failover (Patroni)
// it follows the new primary.  A connection found broken is closed with
// every idle one and opened again on next use; an operation that cannot
// reach the server fails with kUnavailable ("the key store (PostgreSQL
// HOSTS) is unreachable: …"), never waiting much longer than
// connect_timeout: libpq's connect_timeout (per host listed), its
// tcp_user_timeout and keepalives, and the server's statement_timeout are
// all set from it, and a request waits at most twice as long for a free
// connection (then kUnavailable "all N connections … are busy").  A
// statement cancelled by statement_timeout fails with kDeadlineExceeded
// and leaves its connection usable.  Settings
// the URL names win.  An operation whose connection was
// lost before it committed runs again once on a fresh connection; one whose
// COMMIT was lost in flight runs again only when it is idempotent (each
// says so), else it fails with kUnavailable saying the outcome is unknown.
//
// Schema: numbered migrations (PostgresMigrations), recorded in table
// keyward_key_store_schema and applied at Open in one transaction under a
// transaction-level advisory lock, so replicas starting together apply
// each exactly once.  Every table is named keyward_*.  A store belongs to
// the environment it was created for.
//
// Consistency: as KeyStore says.  UpdateKey locks the key's row and checks
// its revision (one of two concurrent writers gets kAborted, on any
// replica); AddDataKeysIssued is one conditional UPDATE; creations rely on
// primary keys (kAlreadyExists), so concurrent first starts agree.
//
// Watch: every write of a key or version (not usage counters), a grant or
// a tenant key notifies channel keyward_changes in its transaction; a
// listener connection of the store's own (started by the first Watch)
// delivers them to the callbacks within milliseconds of the commit, and
// kEverything after it lost and regained its connection.
//
// Leases: table keyward_leases, by the database's clock (now()), each
// taken in one statement, so two replicas racing for an expired lease
// cannot both win.
//
// Scrub: PostgreSQL cannot be made to forget as SQLite is.  Scrub VACUUMs
// the tables that hold sealed material (version KEKs, tenant keys, service
// secrets), which removes dead row versions from the tables' pages; the old
// bytes may remain in free space within pages until it is reused, and they
// remain in the write-ahead log and its archive, on every standby, and in
// every base backup taken before.  All of it is sealed by the HSM root key:
// a destroyed version's KEK or an erased tenant key can only be unsealed
// with the root key; destroying the root key (or the HSM backups) is what
// makes such copies useless.  Operators expire WAL archives and backups on
// the same schedule as the destruction waiting period (docs/ha.md).
//
// Thread-safety: safe for concurrent use.
#ifndef KEYWARD_KEYSTORE_POSTGRES_KEY_STORE_H_
#define KEYWARD_KEYSTORE_POSTGRES_KEY_STORE_H_

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "keystore/key_store.h"
#include "keystore/migration.h"

namespace keyward::keystore {

class PgConnectionPool;
namespace internal {
class ChangeListener;
}  // namespace internal

struct PostgresKeyStoreOptions {
  // Connections in the pool (1 or more): requests beyond it wait for one.
  int connections = 4;
  // Bounds connecting (libpq connect_timeout, in whole seconds, at least 2)
  // and each statement (statement_timeout), so that no operation waits much
  // longer on an unreachable or stuck database.
  absl::Duration connect_timeout = absl::Seconds(5);
};

// The migrations of this build.
const std::vector<Migration>& PostgresMigrations();

// `url` with what keywardd's PostgreSQL connections need, for each setting
// the URL does not name itself: the primary (target_session_attrs =
// read-write), connect and TCP timeouts of `timeout`, keepalives, and
// `application_name`.  The key store applies it; the audit log's
// connections use it too.  Errors: kInvalidArgument for a URL libpq cannot
// parse (the message without its password).
absl::StatusOr<std::string> WithReplicaConnectionDefaults(const std::string& url,
                                                          absl::Duration timeout,
                                                          absl::string_view application_name);

class PostgresKeyStore final : public KeyStore {
 public:
  // Connects to `url` (a libpq URI; settings it names win over the store's
  // defaults), applies the migrations and binds a new store to
  // `environment`.  Errors: kFailedPrecondition (kEnvironmentMismatch) when
  // the store belongs to another environment; kFailedPrecondition when its
  // schema is newer than this build; kUnavailable when the database cannot
  // be reached; kNotFound for a database that does not exist;
  // kPermissionDenied when authentication fails.  Messages never show the
  // URL's password.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PostgresKeyStore>> Open(
      const std::string& url, const std::string& environment,
      PostgresKeyStoreOptions options = {});
  // For tests of the migration mechanism.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PostgresKeyStore>> OpenWithMigrations(
      const std::string& url, const std::string& environment, PostgresKeyStoreOptions options,
      const std::vector<Migration>& migrations);
  // Stops the change listener (if any) and closes every connection.
  ~PostgresKeyStore() override;

  absl::StatusOr<StoreInfo> GetInfo() override;
  // Not retried when the COMMIT was lost (a second run says kAlreadyExists).
  absl::Status CreateKey(const Key& key) override;
  absl::StatusOr<Key> GetKey(absl::string_view name) override;
  absl::StatusOr<KeyPage> ListKeys(absl::string_view prefix, int page_size,
                                   absl::string_view page_token) override;
  // Not retried when the COMMIT was lost (a second run says kAborted).
  absl::Status UpdateKey(const Key& key) override;
  // Not retried when the COMMIT was lost (counters would be added twice).
  absl::Status AddUsage(const std::vector<UsageDelta>& deltas) override;
  // Not retried when the COMMIT was lost (the count would move twice).
  absl::StatusOr<uint64_t> AddDataKeysIssued(absl::string_view key_name, uint32_t version,
                                             int64_t delta, uint64_t limit) override;
  absl::Status Scrub() override;
  absl::StatusOr<std::vector<VersionRef>> ListDueDestructions(absl::Time now) override;
  absl::StatusOr<int64_t> CountKeys() override;
  // Idempotent: retried.
  absl::Status PutDataSetReport(const DataSetReport& report) override;
  absl::StatusOr<std::vector<DataSetReport>> ListDataSetReports(
      absl::string_view key_name) override;
  // Not retried when the COMMIT was lost (a second run says kAlreadyExists).
  absl::Status CreateGrant(const policy::Grant& grant) override;
  absl::StatusOr<std::vector<policy::Grant>> ListGrants(absl::Time now,
                                                        bool include_inactive) override;
  // Not retried when the COMMIT was lost (a second run says kFailedPrecondition).
  absl::Status RevokeGrant(absl::string_view id, absl::Time when) override;
  absl::Status CreateBreakGlass(const policy::BreakGlassGrant& grant) override;
  absl::StatusOr<std::vector<policy::BreakGlassGrant>> ListBreakGlass(
      bool include_closed) override;
  absl::StatusOr<policy::BreakGlassGrant> UpdateBreakGlass(
      absl::string_view id,
      const std::function<absl::Status(policy::BreakGlassGrant&)>& update) override;
  absl::StatusOr<std::optional<TenantKeyRecord>> GetTenantKey(
      absl::string_view key_name, absl::string_view tenant) override;
  // Not retried when the COMMIT was lost (a second run says kAlreadyExists).
  absl::Status PutTenantKey(const TenantKeyRecord& record) override;
  // Not retried when the COMMIT was lost (a second run returns another
  // "before").
  absl::StatusOr<std::optional<TenantKeyRecord>> EraseTenantKey(
      absl::string_view key_name, absl::string_view tenant, absl::Time when,
      absl::string_view by) override;
  absl::StatusOr<std::optional<std::string>> GetSealedSecret(absl::string_view name) override;
  // Not retried when the COMMIT was lost (a second run says kAlreadyExists).
  absl::Status PutSealedSecret(absl::string_view name, absl::string_view sealed) override;
  // Idempotent: retried.
  absl::Status SetSealedSecret(absl::string_view name, absl::string_view sealed) override;

  // See the file comment.  Never fails for an unreachable database: the
  // listener keeps trying and delivers kEverything once connected.
  absl::Status Watch(std::function<void(const StoreChange&)> on_change) override;
  // Idempotent for the same holder: retried.
  absl::StatusOr<Lease> AcquireLease(absl::string_view name, absl::string_view holder,
                                     absl::Duration ttl) override;
  // Idempotent: retried.
  absl::Status ReleaseLease(absl::string_view name, absl::string_view holder) override;

 private:
  PostgresKeyStore(std::string url, std::string redacted_url, std::string environment,
                   std::unique_ptr<PgConnectionPool> pool, int schema_version,
                   absl::Time created);

  const std::string url_;           // with the store's defaults; has the password
  const std::string redacted_url_;  // for messages and GetInfo
  const std::string environment_;
  const std::unique_ptr<PgConnectionPool> pool_;
  const int schema_version_;
  const absl::Time created_;
  std::mutex listener_mu_;
  std::unique_ptr<internal::ChangeListener> listener_;  // GUARDED_BY(listener_mu_)
};

}  // namespace keyward::keystore

#endif  // KEYWARD_KEYSTORE_POSTGRES_KEY_STORE_H_
