// Keys and their versions in the PostgreSQL key store: create, read, list,
// update under the revision check, count, and the versions due for
// destruction.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keystore/postgres_change_feed.h"
#include "keystore/postgres_connection_pool.h"
#include "keystore/postgres_key_store.h"
#include "keystore/store_common.h"
#include "keystore/store_rows.h"

namespace keyward::keystore {
namespace {

// A key's row joined with each of its versions (one statement: one
// snapshot, so a key is never read half-updated), ordered by name and
// version.  Columns 0-9 are the key's, 10-23 the version's.
constexpr char kKeyColumns[] =
    "SELECT k.name, k.purpose, k.suite, k.environment, k.labels, k.rotation_period_s, "
    "k.primary_version, k.created_us, k.updated_us, k.revision, "
    "v.version, v.state, v.protection, v.sealed_kek, v.hsm_key_id, v.created_us, "
    "v.destroy_after_us, v.destroyed_us, v.data_keys_issued, v.decrypts, v.last_used_us, "
    "v.last_decrypt_us, v.drill_sample, v.state_before_destruction, v.compromised_us, "
    "v.compromise_reason, v.compromised_by ";

std::vector<Key> KeysFromRows(const std::vector<appdb::ResultRow>& rows) {
  std::vector<Key> keys;
  for (const appdb::ResultRow& r : rows) {
    const SqlRow row(r);
    if (keys.empty() || keys.back().name != row.Text(0)) {
      keys.push_back(internal::ReadKeyColumns(row, 0));
    }
    if (row.IsNull(10)) continue;  // a key without versions
    keys.back().versions.push_back(internal::ReadVersionColumns(row, 10));
  }
  return keys;
}

absl::StatusOr<Key> LoadKey(appdb::Database& db, absl::string_view name) {
  KW_ASSIGN_OR_RETURN(
      auto rows,
      Query(db,
            absl::StrCat(kKeyColumns,
                         "FROM keyward_keys k LEFT JOIN keyward_key_versions v "
                         "ON v.key_name = k.name WHERE k.name = $1 ORDER BY v.version"),
            SqlParams().Text(name)));
  std::vector<Key> keys = KeysFromRows(rows);
  if (keys.empty()) return internal::KeyNotFound(name);
  return std::move(keys[0]);
}

// Writes the versions of `key` that differ from `stored` (all when null).
absl::Status WriteVersions(appdb::Database& db, const Key& key, const Key* stored) {
  for (const KeyVersion& v : key.versions) {
    if (stored != nullptr) {
      const KeyVersion* old = stored->FindVersion(v.version);
      if (old != nullptr && internal::SameStoredFields(*old, v)) continue;
    }
    SqlParams p;
    p.Text(key.name)
        .Int(v.version)
        .Int(static_cast<int64_t>(v.state))
        .Int(static_cast<int64_t>(v.protection))
        .OptionalBytes(v.sealed_kek);
    v.hsm_key_id.empty() ? p.Null() : p.Text(v.hsm_key_id);
    p.Time(v.created).OptionalTime(v.destroy_after).OptionalTime(v.destroyed).OptionalBytes(
        v.drill_sample);
    v.state_before_destruction ? p.Int(static_cast<int64_t>(*v.state_before_destruction))
                               : p.Null();
    if (v.compromise) {
      p.Time(v.compromise->when).Text(v.compromise->reason).Text(v.compromise->by);
    } else {
      p.Null().Null().Null();
    }
    KW_RETURN_IF_ERROR(
        Execute(db,
                "INSERT INTO keyward_key_versions (key_name, version, state, protection, "
                "sealed_kek, hsm_key_id, created_us, destroy_after_us, destroyed_us, "
                "drill_sample, state_before_destruction, compromised_us, compromise_reason, "
                "compromised_by) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
                "ON CONFLICT (key_name, version) DO UPDATE SET "
                "state = excluded.state, protection = excluded.protection, "
                "sealed_kek = excluded.sealed_kek, hsm_key_id = excluded.hsm_key_id, "
                "destroy_after_us = excluded.destroy_after_us, "
                "destroyed_us = excluded.destroyed_us, drill_sample = excluded.drill_sample, "
                "state_before_destruction = excluded.state_before_destruction, "
                "compromised_us = excluded.compromised_us, "
                "compromise_reason = excluded.compromise_reason, "
                "compromised_by = excluded.compromised_by",
                p)
            .status());
  }
  return absl::OkStatus();
}

StoreChange KeyChanged(const std::string& name) {
  return StoreChange{StoreChange::Kind::kKey, name, ""};
}

}  // namespace

absl::Status PostgresKeyStore::CreateKey(const Key& key) {
  KW_RETURN_IF_ERROR(internal::CheckNewKey(key, environment_));
  return pool_->InTransaction(
      "create a key", OnUnknownOutcome::kReport, [&](appdb::Database& db) -> absl::Status {
        KW_ASSIGN_OR_RETURN(
            uint64_t inserted,
            Execute(db,
                    "INSERT INTO keyward_keys (name, purpose, suite, environment, labels, "
                    "rotation_period_s, primary_version, created_us, updated_us, revision) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1) "
                    "ON CONFLICT (name) DO NOTHING",
                    SqlParams()
                        .Text(key.name)
                        .Int(static_cast<int64_t>(key.purpose))
                        .Int(static_cast<int64_t>(key.suite))
                        .Text(key.environment)
                        .Text(internal::LabelsToJson(key.labels))
                        .Int(absl::ToInt64Seconds(key.rotation_period))
                        .Int(key.primary_version)
                        .Time(key.created)
                        .Time(key.updated)));
        if (inserted == 0) {
          return absl::AlreadyExistsError(
              absl::StrCat("a key named '", key.name, "' already exists"));
        }
        KW_RETURN_IF_ERROR(WriteVersions(db, key, nullptr));
        return internal::NotifyChange(db, KeyChanged(key.name));
      });
}

absl::StatusOr<Key> PostgresKeyStore::GetKey(absl::string_view name) {
  Key key;
  KW_RETURN_IF_ERROR(pool_->Run([&](appdb::Database& db) -> absl::Status {
    KW_ASSIGN_OR_RETURN(key, LoadKey(db, name));
    return absl::OkStatus();
  }));
  return key;
}

absl::StatusOr<KeyPage> PostgresKeyStore::ListKeys(absl::string_view prefix, int page_size,
                                                   absl::string_view token) {
  KW_RETURN_IF_ERROR(internal::CheckPageSize(page_size));
  std::vector<Key> keys;
  KW_RETURN_IF_ERROR(pool_->Run([&](appdb::Database& db) -> absl::Status {
    KW_ASSIGN_OR_RETURN(
        auto rows,
        Query(db,
              absl::StrCat("WITH page AS (SELECT name FROM keyward_keys WHERE name >= $1 "
                           "AND name > $2 AND ($3 = '' OR name < $3) ORDER BY name LIMIT $4) ",
                           kKeyColumns,
                           "FROM page JOIN keyward_keys k ON k.name = page.name "
                           "LEFT JOIN keyward_key_versions v ON v.key_name = k.name "
                           "ORDER BY k.name, v.version"),
              SqlParams()
                  .Text(prefix)
                  .Text(token)
                  .Text(internal::PrefixEnd(prefix))
                  .Int(page_size + 1)));
    keys = KeysFromRows(rows);
    return absl::OkStatus();
  }));
  KeyPage page;
  const bool more = static_cast<int>(keys.size()) > page_size;
  if (more) keys.resize(static_cast<size_t>(page_size));
  page.keys = std::move(keys);
  if (more) page.next_page_token = internal::NextPageToken(page.keys.back().name);
  return page;
}

absl::Status PostgresKeyStore::UpdateKey(const Key& key) {
  KW_RETURN_IF_ERROR(ValidateKey(key));
  return pool_->InTransaction(
      "update a key", OnUnknownOutcome::kReport, [&](appdb::Database& db) -> absl::Status {
        // The row lock makes a concurrent writer, on any replica, wait here
        // and then see the new revision.
        KW_ASSIGN_OR_RETURN(auto rev, Query(db,
                                            "SELECT revision FROM keyward_keys "
                                            "WHERE name = $1 FOR UPDATE",
                                            SqlParams().Text(key.name)));
        if (rev.empty()) return internal::KeyNotFound(key.name);
        if (static_cast<uint64_t>(SqlRow(rev[0]).Int(0)) != key.revision) {
          return internal::RevisionConflict(key.name);
        }
        KW_ASSIGN_OR_RETURN(Key stored, LoadKey(db, key.name));
        if (stored.versions.size() > key.versions.size()) {
          return absl::InvalidArgumentError("versions are never removed");
        }
        KW_RETURN_IF_ERROR(Execute(db,
                                   "UPDATE keyward_keys SET labels = $2, rotation_period_s = $3, "
                                   "primary_version = $4, updated_us = $5, suite = $6, "
                                   "revision = revision + 1 WHERE name = $1",
                                   SqlParams()
                                       .Text(key.name)
                                       .Text(internal::LabelsToJson(key.labels))
                                       .Int(absl::ToInt64Seconds(key.rotation_period))
                                       .Int(key.primary_version)
                                       .Time(key.updated)
                                       .Int(static_cast<int64_t>(key.suite)))
                               .status());
        KW_RETURN_IF_ERROR(WriteVersions(db, key, &stored));
        return internal::NotifyChange(db, KeyChanged(key.name));
      });
}

absl::StatusOr<int64_t> PostgresKeyStore::CountKeys() {
  int64_t count = 0;
  KW_RETURN_IF_ERROR(pool_->Run([&](appdb::Database& db) -> absl::Status {
    KW_ASSIGN_OR_RETURN(auto rows, Query(db, "SELECT COUNT(*) FROM keyward_keys"));
    count = rows.empty() ? 0 : SqlRow(rows[0]).Int(0);
    return absl::OkStatus();
  }));
  return count;
}

absl::StatusOr<std::vector<VersionRef>> PostgresKeyStore::ListDueDestructions(absl::Time now) {
  std::vector<VersionRef> due;
  KW_RETURN_IF_ERROR(pool_->Run([&](appdb::Database& db) -> absl::Status {
    KW_ASSIGN_OR_RETURN(
        auto rows,
        Query(db,
              "SELECT key_name, version FROM keyward_key_versions WHERE (state = 4 "
              "AND destroy_after_us <= $1) OR (state = 5 AND hsm_key_id IS NOT NULL "
              "AND hsm_key_id != '') ORDER BY destroy_after_us, key_name, version",
              SqlParams().Time(now)));
    due.clear();
    for (const auto& r : rows) {
      const SqlRow row(r);
      due.push_back({row.Text(0), static_cast<uint32_t>(row.Int(1))});
    }
    return absl::OkStatus();
  }));
  return due;
}

}  // namespace keyward::keystore
