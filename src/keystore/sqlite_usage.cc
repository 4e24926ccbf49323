// How much each key version is used, in the SQLite key store: request
// counters, the data keys issued against a limit, and data set reports.
#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keystore/sqlite_key_store.h"
#include "keystore/sqlite_statement.h"
#include "keystore/store_common.h"

namespace keyward::keystore {

absl::Status SqliteKeyStore::AddUsage(const std::vector<UsageDelta>& deltas) {
  if (deltas.empty()) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(db_, [&]() -> absl::Status {
    for (const UsageDelta& d : deltas) {
      Statement one(db_, Prepare(
                    "UPDATE key_versions SET "
                    "data_keys_issued = data_keys_issued + ?3, "
                    "decrypts = decrypts + ?4, "
                    "last_used_us = MAX(COALESCE(last_used_us, 0), ?5), "
                    "last_decrypt_us = CASE WHEN ?6 IS NULL THEN last_decrypt_us "
                    "ELSE MAX(COALESCE(last_decrypt_us, 0), ?6) END "
                    "WHERE key_name = ?1 AND version = ?2"));
      one.Bind(1, d.key_name)
          .Bind(2, d.version)
          .Bind(3, static_cast<int64_t>(d.data_keys_issued))
          .Bind(4, static_cast<int64_t>(d.decrypts))
          .Bind(5, absl::ToUnixMicros(d.last_used));
      if (d.last_decrypt == absl::InfinitePast()) {
        one.BindNull(6);
      } else {
        one.Bind(6, absl::ToUnixMicros(d.last_decrypt));
      }
      if (one.Step() != SQLITE_DONE) return SqliteError(db_, "add usage");
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<uint64_t> SqliteKeyStore::AddDataKeysIssued(absl::string_view key_name,
                                                           uint32_t version, int64_t delta,
                                                           uint64_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t count = 0;
  KW_RETURN_IF_ERROR(InTransaction(db_, [&]() -> absl::Status {
    Statement read(db_, Prepare("SELECT data_keys_issued FROM key_versions "
                                "WHERE key_name = ?1 AND version = ?2"));
    read.Bind(1, key_name).Bind(2, version);
    const int rc = read.Step();
    if (rc == SQLITE_DONE) {
      return absl::NotFoundError(
          absl::StrCat("key ", key_name, " has no version ", version));
    }
    if (rc != SQLITE_ROW) return SqliteError(db_, "read data key count");
    const uint64_t now = static_cast<uint64_t>(read.Int(0));
    if (delta > 0 && now + static_cast<uint64_t>(delta) > limit) {
      return absl::ResourceExhaustedError("over the version's data key limit");
    }
    count = delta >= 0 ? now + static_cast<uint64_t>(delta)
                       : now - std::min(now, static_cast<uint64_t>(-delta));
    Statement write(db_, Prepare("UPDATE key_versions SET data_keys_issued = ?3 "
                                 "WHERE key_name = ?1 AND version = ?2"));
    write.Bind(1, key_name).Bind(2, version).Bind(3, static_cast<int64_t>(count));
    if (write.Step() != SQLITE_DONE) return SqliteError(db_, "write data key count");
    return absl::OkStatus();
  }));
  return count;
}

absl::Status SqliteKeyStore::PutDataSetReport(const DataSetReport& r) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, Prepare(
              "INSERT INTO data_set_reports (key_name, data_set, rows_per_version, "
              "rows_total, reported_us, reported_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
              "ON CONFLICT (key_name, data_set) DO UPDATE SET "
              "rows_per_version = excluded.rows_per_version, "
              "rows_total = excluded.rows_total, reported_us = excluded.reported_us, "
              "reported_by = excluded.reported_by"));
  s.Bind(1, r.key_name)
      .Bind(2, r.data_set)
      .Bind(3, internal::RowsPerVersionToJson(r.rows_per_version))
      .Bind(4, static_cast<int64_t>(r.rows_total))
      .Bind(5, absl::ToUnixMicros(r.reported))
      .Bind(6, r.reported_by);
  if (s.Step() != SQLITE_DONE) return SqliteError(db_, "store data set report");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<DataSetReport>> SqliteKeyStore::ListDataSetReports(
    absl::string_view key_name) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, Prepare(
              "SELECT data_set, rows_per_version, rows_total, reported_us, reported_by "
              "FROM data_set_reports WHERE key_name = ?1 ORDER BY data_set"));
  s.Bind(1, key_name);
  std::vector<DataSetReport> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    DataSetReport r;
    r.key_name = std::string(key_name);
    r.data_set = s.Text(0);
    r.rows_per_version = internal::RowsPerVersionFromJson(s.Text(1));
    r.rows_total = static_cast<uint64_t>(s.Int(2));
    r.reported = absl::FromUnixMicros(s.Int(3));
    r.reported_by = s.Text(4);
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, "list data set reports");
  return out;
}

}  // namespace keyward::keystore
