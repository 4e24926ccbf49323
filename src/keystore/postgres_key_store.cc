// Opening the PostgreSQL key store (connection settings, migrations, the
// store's environment), its change feed and its scrub.
#include "keystore/postgres_key_store.h"

#include <libpq-fe.h>

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "appdb/url.h"
#include "base/status_macros.h"
#include "keystore/postgres_change_feed.h"
#include "keystore/postgres_connection_pool.h"
#include "keystore/postgres_schema.h"

namespace keyward::keystore {
namespace {

struct ConnectionSettings {
  std::string url;    // the caller's, with the store's defaults added
  std::string hosts;  // "db1:5432,db2:5432"
};

// The libpq settings `url` names explicitly, or an error for a URL libpq
// cannot parse (its message without the password).
absl::StatusOr<std::map<std::string, std::string>> ParseConninfo(const std::string& url) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
  if (options == nullptr) {
    std::string why = error != nullptr ? error : "out of memory";
    PQfreemem(error);
    return absl::InvalidArgumentError(
        absl::StrCat("the key store's PostgreSQL URL is not valid: ",
                     appdb::ScrubSecret(std::string(absl::StripTrailingAsciiWhitespace(why)),
                                        appdb::UrlPassword(url)),
                     "; write it as postgresql://user@host1:port,host2:port/dbname"));
  }
  std::map<std::string, std::string> set;
  for (const PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val != nullptr) set[o->keyword] = o->val;
  }
  PQconninfoFree(options);
  return set;
}

// "db1:5432,db2:5432" from libpq's comma-separated host and port lists (a
// single port applies to every host).
std::string DescribeHosts(const std::map<std::string, std::string>& set) {
  auto get = [&](const char* key) {
    auto it = set.find(key);
    return it == set.end() ? std::string() : it->second;
  };
  std::string host_list = get("host");
  if (host_list.empty()) host_list = get("hostaddr");
  if (host_list.empty()) host_list = "localhost";
  const std::vector<std::string> hosts = absl::StrSplit(host_list, ',');
  const std::vector<std::string> ports = absl::StrSplit(get("port"), ',');
  std::vector<std::string> out;
  for (size_t i = 0; i < hosts.size(); ++i) {
    const std::string& port = ports.size() == hosts.size() ? ports[i] : ports[0];
    out.push_back(port.empty() ? hosts[i] : absl::StrCat(hosts[i], ":", port));
  }
  return absl::StrJoin(out, ",");
}

absl::StatusOr<ConnectionSettings> Settings(const std::string& url, absl::Duration timeout,
                                            absl::string_view application_name) {
  KW_ASSIGN_OR_RETURN(auto set, ParseConninfo(url));
  const int64_t timeout_ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout));
  // libpq's connect_timeout is whole seconds, and below 2 it uses 2.
  const int64_t timeout_s = std::max<int64_t>(2, (timeout_ms + 999) / 1000);
  const bool is_uri =
      absl::StartsWith(url, "postgresql://") || absl::StartsWith(url, "postgres://");
  ConnectionSettings out{url, DescribeHosts(set)};
  bool has_query = is_uri && absl::StrContains(url, '?');
  auto add_default = [&](const char* key, const std::string& value) {
    if (set.count(key) != 0) return;
    if (is_uri) {
      absl::StrAppend(&out.url, has_query ? "&" : "?", key, "=", value);
      has_query = true;
    } else {
      absl::StrAppend(&out.url, " ", key, "=", value);
    }
  };
  // The store writes: it wants the primary, whichever host it is now.
  add_default("target_session_attrs", "read-write");
  add_default("connect_timeout", absl::StrCat(timeout_s));
  // A server that vanished (no reset, no answer) is given up on after the
  // timeout instead of TCP's minutes.
  add_default("tcp_user_timeout", absl::StrCat(timeout_ms));
  add_default("keepalives_idle", absl::StrCat(timeout_s));
  add_default("keepalives_interval", "1");
  add_default("keepalives_count", "3");
  add_default("application_name", std::string(application_name));
  return out;
}

}  // namespace

absl::StatusOr<std::string> WithReplicaConnectionDefaults(const std::string& url,
                                                          absl::Duration timeout,
                                                          absl::string_view application_name) {
  KW_ASSIGN_OR_RETURN(ConnectionSettings settings, Settings(url, timeout, application_name));
  return settings.url;
}

absl::StatusOr<std::unique_ptr<PostgresKeyStore>> PostgresKeyStore::Open(
    const std::string& url, const std::string& environment, PostgresKeyStoreOptions options) {
  return OpenWithMigrations(url, environment, options, PostgresMigrations());
}

absl::StatusOr<std::unique_ptr<PostgresKeyStore>> PostgresKeyStore::OpenWithMigrations(
    const std::string& url, const std::string& environment, PostgresKeyStoreOptions options,
    const std::vector<Migration>& migrations) {
  if (options.connections < 1 || options.connect_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "the PostgreSQL key store needs at least one connection and a positive connect timeout");
  }
  KW_ASSIGN_OR_RETURN(ConnectionSettings settings,
                      Settings(url, options.connect_timeout, "keywardd-keystore"));
  const std::string redacted = appdb::RedactUrlPassword(url);
  auto pool = std::make_unique<PgConnectionPool>(
      settings.url, redacted, settings.hosts, options.connections, options.connect_timeout);
  internal::SchemaState state;
  // Idempotent: a second run finds the migrations applied and the
  // environment recorded.
  KW_RETURN_IF_ERROR(pool->InTransaction(
      "migrate the schema", OnUnknownOutcome::kRetry,
      [&](appdb::Database& db) -> absl::Status {
        KW_ASSIGN_OR_RETURN(state, internal::MigrateAndCheckEnvironment(db, migrations,
                                                                        environment, redacted));
        return absl::OkStatus();
      }));
  return std::unique_ptr<PostgresKeyStore>(new PostgresKeyStore(
      settings.url, redacted, environment, std::move(pool), state.version, state.created));
}

PostgresKeyStore::PostgresKeyStore(std::string url, std::string redacted_url,
                                   std::string environment,
                                   std::unique_ptr<PgConnectionPool> pool,
                                   int schema_version, absl::Time created)
    : url_(std::move(url)),
      redacted_url_(std::move(redacted_url)),
      environment_(std::move(environment)),
      pool_(std::move(pool)),
      schema_version_(schema_version),
      created_(created) {}

PostgresKeyStore::~PostgresKeyStore() {
  // The listener's thread calls back into callers' code: it stops first.
  std::lock_guard<std::mutex> lock(listener_mu_);
  listener_.reset();
}

absl::StatusOr<StoreInfo> PostgresKeyStore::GetInfo() {
  return StoreInfo{environment_, redacted_url_, schema_version_, created_};
}

absl::Status PostgresKeyStore::Watch(std::function<void(const StoreChange&)> on_change) {
  std::lock_guard<std::mutex> lock(listener_mu_);
  if (listener_ == nullptr) listener_ = std::make_unique<internal::ChangeListener>(url_);
  return listener_->Add(std::move(on_change));
}

absl::Status PostgresKeyStore::Scrub() {
  // VACUUM cannot run in a transaction; each is idempotent.
  return pool_->Run([](appdb::Database& db) -> absl::Status {
    for (const char* vacuum : {"VACUUM keyward_key_versions", "VACUUM keyward_tenant_keys",
                               "VACUUM keyward_sealed_secrets"}) {
      KW_RETURN_IF_ERROR(Execute(db, vacuum).status());
    }
    return absl::OkStatus();
  });
}

}  // namespace keyward::keystore
