// Keys and their versions in the SQLite key store: create, read, list,
// update under the revision check, count.
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keystore/sqlite_key_store.h"
#include "keystore/sqlite_statement.h"
#include "keystore/store_common.h"
#include "keystore/store_rows.h"

namespace keyward::keystore {

absl::Status SqliteKeyStore::WriteVersionsLocked(const Key& key,
                                                 const Key* stored) {
  for (const KeyVersion& v : key.versions) {
    if (stored != nullptr) {
      const KeyVersion* old = stored->FindVersion(v.version);
      if (old != nullptr && internal::SameStoredFields(*old, v)) continue;
    }
    Statement s(db_, Prepare(
                "INSERT INTO key_versions (key_name, version, state, protection, "
                "sealed_kek, hsm_key_id, created_us, destroy_after_us, "
                "destroyed_us, drill_sample, state_before_destruction, "
                "compromised_us, compromise_reason, compromised_by) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) "
                "ON CONFLICT (key_name, version) DO UPDATE SET "
                "state = excluded.state, protection = excluded.protection, "
                "sealed_kek = excluded.sealed_kek, "
                "hsm_key_id = excluded.hsm_key_id, "
                "destroy_after_us = excluded.destroy_after_us, "
                "destroyed_us = excluded.destroyed_us, "
                "drill_sample = excluded.drill_sample, "
                "state_before_destruction = excluded.state_before_destruction, "
                "compromised_us = excluded.compromised_us, "
                "compromise_reason = excluded.compromise_reason, "
                "compromised_by = excluded.compromised_by"));
    s.Bind(1, key.name)
        .Bind(2, v.version)
        .Bind(3, static_cast<int64_t>(v.state))
        .Bind(4, static_cast<int64_t>(v.protection));
    v.sealed_kek.empty() ? s.BindNull(5) : s.BindBlob(5, v.sealed_kek);
    v.hsm_key_id.empty() ? s.BindNull(6) : s.Bind(6, v.hsm_key_id);
    s.Bind(7, absl::ToUnixMicros(v.created))
        .BindOptionalTime(8, v.destroy_after)
        .BindOptionalTime(9, v.destroyed);
    v.drill_sample.empty() ? s.BindNull(10) : s.BindBlob(10, v.drill_sample);
    v.state_before_destruction
        ? s.Bind(11, static_cast<int64_t>(*v.state_before_destruction))
        : s.BindNull(11);
    if (v.compromise) {
      s.Bind(12, absl::ToUnixMicros(v.compromise->when))
          .Bind(13, v.compromise->reason)
          .Bind(14, v.compromise->by);
    } else {
      s.BindNull(12).BindNull(13).BindNull(14);
    }
    if (s.Step() != SQLITE_DONE) return SqliteError(db_, "write key version");
  }
  return absl::OkStatus();
}

absl::Status SqliteKeyStore::CreateKey(const Key& key) {
  KW_RETURN_IF_ERROR(internal::CheckNewKey(key, environment_));
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(db_, [&] { return CreateKeyLocked(key); });
}

absl::Status SqliteKeyStore::CreateKeys(const std::vector<Key>& keys) {
  for (const Key& key : keys) {
    KW_RETURN_IF_ERROR(internal::CheckNewKey(key, environment_));
  }
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(db_, [&]() -> absl::Status {
    for (const Key& key : keys) KW_RETURN_IF_ERROR(CreateKeyLocked(key));
    return absl::OkStatus();
  });
}

absl::Status SqliteKeyStore::CreateKeyLocked(const Key& key) {
  {
    Statement s(db_, Prepare(
                "INSERT INTO keys (name, purpose, suite, environment, labels, "
                "rotation_period_s, primary_version, created_us, updated_us, "
                "revision) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1)"));
    s.Bind(1, key.name)
        .Bind(2, static_cast<int64_t>(key.purpose))
        .Bind(3, static_cast<int64_t>(key.suite))
        .Bind(4, key.environment)
        .Bind(5, internal::LabelsToJson(key.labels))
        .Bind(6, absl::ToInt64Seconds(key.rotation_period))
        .Bind(7, key.primary_version)
        .Bind(8, absl::ToUnixMicros(key.created))
        .Bind(9, absl::ToUnixMicros(key.updated));
    if (s.Step() != SQLITE_DONE) {
      if ((sqlite3_errcode(db_) & 0xff) == SQLITE_CONSTRAINT) {
        return absl::AlreadyExistsError(
            absl::StrCat("a key named '", key.name, "' already exists"));
      }
      return SqliteError(db_, "create key");
    }
  }
  return WriteVersionsLocked(key, nullptr);
}

absl::StatusOr<Key> SqliteKeyStore::LoadKeyLocked(absl::string_view name) {
  Statement s(db_, Prepare(
              "SELECT name, purpose, suite, environment, labels, "
              "rotation_period_s, primary_version, created_us, updated_us, "
              "revision FROM keys WHERE name = ?1"));
  s.Bind(1, name);
  const int rc = s.Step();
  if (rc == SQLITE_DONE) return internal::KeyNotFound(name);
  if (rc != SQLITE_ROW) return SqliteError(db_, "read key");
  Key key = internal::ReadKeyColumns(s, 0);
  Statement v(db_, Prepare(
              "SELECT version, state, protection, sealed_kek, hsm_key_id, "
              "created_us, destroy_after_us, destroyed_us, data_keys_issued, "
              "decrypts, last_used_us, last_decrypt_us, drill_sample, "
              "state_before_destruction, compromised_us, compromise_reason, "
              "compromised_by FROM key_versions "
              "WHERE key_name = ?1 ORDER BY version"));
  v.Bind(1, name);
  int vrc;
  while ((vrc = v.Step()) == SQLITE_ROW) {
    key.versions.push_back(internal::ReadVersionColumns(v, 0));
  }
  if (vrc != SQLITE_DONE) return SqliteError(db_, "read key versions");
  return key;
}

absl::StatusOr<Key> SqliteKeyStore::GetKey(absl::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  return LoadKeyLocked(name);
}

absl::StatusOr<KeyPage> SqliteKeyStore::ListKeys(absl::string_view prefix,
                                                 int page_size,
                                                 absl::string_view token) {
  KW_RETURN_IF_ERROR(internal::CheckPageSize(page_size));
  std::lock_guard<std::mutex> lock(mu_);
  const std::string end = internal::PrefixEnd(prefix);
  Statement s(db_, Prepare(
              "SELECT name FROM keys WHERE name >= ?1 AND name > ?2 "
              "AND (?3 = '' OR name < ?3) ORDER BY name LIMIT ?4"));
  s.Bind(1, prefix).Bind(2, token).Bind(3, end).Bind(4, page_size + 1);
  std::vector<std::string> names;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) names.push_back(s.Text(0));
  if (rc != SQLITE_DONE) return SqliteError(db_, "list keys");
  KeyPage page;
  for (size_t i = 0; i < names.size() && static_cast<int>(i) < page_size; ++i) {
    KW_ASSIGN_OR_RETURN(Key key, LoadKeyLocked(names[i]));
    page.keys.push_back(std::move(key));
  }
  if (static_cast<int>(names.size()) > page_size) {
    page.next_page_token = internal::NextPageToken(page.keys.back().name);
  }
  return page;
}

absl::Status SqliteKeyStore::UpdateKey(const Key& key) {
  KW_RETURN_IF_ERROR(ValidateKey(key));
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(db_, [&]() -> absl::Status {
    Statement rev(db_, Prepare( "SELECT revision FROM keys WHERE name = ?1"));
    rev.Bind(1, key.name);
    const int rc = rev.Step();
    if (rc == SQLITE_DONE) return internal::KeyNotFound(key.name);
    if (rc != SQLITE_ROW) return SqliteError(db_, "read revision");
    if (static_cast<uint64_t>(rev.Int(0)) != key.revision) {
      return internal::RevisionConflict(key.name);
    }
    KW_ASSIGN_OR_RETURN(Key stored, LoadKeyLocked(key.name));
    if (stored.versions.size() > key.versions.size()) {
      return absl::InvalidArgumentError("versions are never removed");
    }
    Statement s(db_, Prepare(
                "UPDATE keys SET labels = ?2, rotation_period_s = ?3, "
                "primary_version = ?4, updated_us = ?5, suite = ?6, "
                "revision = revision + 1 WHERE name = ?1"));
    s.Bind(1, key.name)
        .Bind(2, internal::LabelsToJson(key.labels))
        .Bind(3, absl::ToInt64Seconds(key.rotation_period))
        .Bind(4, key.primary_version)
        .Bind(5, absl::ToUnixMicros(key.updated))
        .Bind(6, static_cast<int64_t>(key.suite));
    if (s.Step() != SQLITE_DONE) return SqliteError(db_, "update key");
    return WriteVersionsLocked(key, &stored);
  });
}

absl::StatusOr<int64_t> SqliteKeyStore::CountKeys() {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, Prepare( "SELECT COUNT(*) FROM keys"));
  if (s.Step() != SQLITE_ROW) return SqliteError(db_, "count keys");
  return s.Int(0);
}

}  // namespace keyward::keystore
