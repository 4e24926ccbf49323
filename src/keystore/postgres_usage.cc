// How much each key version is used, in the PostgreSQL key store: request
// counters, the data keys issued against a limit, and data set reports.
#include <algorithm>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keystore/postgres_connection_pool.h"
#include "keystore/postgres_key_store.h"
#include "keystore/store_common.h"

namespace keyward::keystore {

absl::Status PostgresKeyStore::AddUsage(const std::vector<UsageDelta>& deltas) {
  if (deltas.empty()) return absl::OkStatus();
  // Rows are locked in one order by every replica, so two batches never
  // deadlock.
  std::vector<const UsageDelta*> sorted;
  for (const UsageDelta& d : deltas) sorted.push_back(&d);
  std::sort(sorted.begin(), sorted.end(), [](const UsageDelta* a, const UsageDelta* b) {
    return std::tie(a->key_name, a->version) < std::tie(b->key_name, b->version);
  });
  return pool_->InTransaction(
      "add usage", OnUnknownOutcome::kReport, [&](appdb::Database& db) -> absl::Status {
        for (const UsageDelta* d : sorted) {
          SqlParams p;
          p.Text(d->key_name)
              .Int(d->version)
              .Int(static_cast<int64_t>(d->data_keys_issued))
              .Int(static_cast<int64_t>(d->decrypts))
              .Time(d->last_used);
          d->last_decrypt == absl::InfinitePast() ? p.Null() : p.Time(d->last_decrypt);
          KW_RETURN_IF_ERROR(
              Execute(db,
                      "UPDATE keyward_key_versions SET "
                      "data_keys_issued = data_keys_issued + $3, decrypts = decrypts + $4, "
                      "last_used_us = GREATEST(COALESCE(last_used_us, 0), $5), "
                      "last_decrypt_us = CASE WHEN $6::bigint IS NULL THEN last_decrypt_us "
                      "ELSE GREATEST(COALESCE(last_decrypt_us, 0), $6::bigint) END "
                      "WHERE key_name = $1 AND version = $2",
                      p)
                  .status());
        }
        return absl::OkStatus();
      });
}

absl::StatusOr<uint64_t> PostgresKeyStore::AddDataKeysIssued(absl::string_view key_name,
                                                             uint32_t version, int64_t delta,
                                                             uint64_t limit) {
  uint64_t count = 0;
  KW_RETURN_IF_ERROR(pool_->InTransaction(
      "count data keys", OnUnknownOutcome::kReport, [&](appdb::Database& db) -> absl::Status {
        // One conditional UPDATE: replicas reserving at once queue on the
        // row and each sees the others' additions, so none passes the
        // limit.  numeric, because the limit may be any uint64.
        KW_ASSIGN_OR_RETURN(
            auto rows,
            Query(db,
                  "UPDATE keyward_key_versions SET data_keys_issued = "
                  "GREATEST(data_keys_issued::numeric + $3::numeric, 0)::bigint "
                  "WHERE key_name = $1 AND version = $2 AND "
                  "($3::numeric <= 0 OR data_keys_issued::numeric + $3::numeric <= $4::numeric) "
                  "RETURNING data_keys_issued",
                  SqlParams().Text(key_name).Int(version).Int(delta).Text(absl::StrCat(limit))));
        if (!rows.empty()) {
          count = static_cast<uint64_t>(SqlRow(rows[0]).Int(0));
          return absl::OkStatus();
        }
        KW_ASSIGN_OR_RETURN(auto exists, Query(db,
                                               "SELECT 1 FROM keyward_key_versions "
                                               "WHERE key_name = $1 AND version = $2",
                                               SqlParams().Text(key_name).Int(version)));
        if (exists.empty()) {
          return absl::NotFoundError(absl::StrCat("key ", key_name, " has no version ", version));
        }
        return absl::ResourceExhaustedError("over the version's data key limit");
      }));
  return count;
}

absl::Status PostgresKeyStore::PutDataSetReport(const DataSetReport& r) {
  return pool_->InTransaction(
      "store a data set report", OnUnknownOutcome::kRetry,
      [&](appdb::Database& db) -> absl::Status {
        return Execute(db,
                       "INSERT INTO keyward_data_set_reports (key_name, data_set, "
                       "rows_per_version, rows_total, reported_us, reported_by) "
                       "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key_name, data_set) DO "
                       "UPDATE SET rows_per_version = excluded.rows_per_version, "
                       "rows_total = excluded.rows_total, reported_us = excluded.reported_us, "
                       "reported_by = excluded.reported_by",
                       SqlParams()
                           .Text(r.key_name)
                           .Text(r.data_set)
                           .Text(internal::RowsPerVersionToJson(r.rows_per_version))
                           .Int(static_cast<int64_t>(r.rows_total))
                           .Time(r.reported)
                           .Text(r.reported_by))
            .status();
      });
}

absl::StatusOr<std::vector<DataSetReport>> PostgresKeyStore::ListDataSetReports(
    absl::string_view key_name) {
  std::vector<DataSetReport> out;
  KW_RETURN_IF_ERROR(pool_->Run([&](appdb::Database& db) -> absl::Status {
    KW_ASSIGN_OR_RETURN(
        auto rows, Query(db,
                         "SELECT data_set, rows_per_version, rows_total, reported_us, "
                         "reported_by FROM keyward_data_set_reports WHERE key_name = $1 "
                         "ORDER BY data_set",
                         SqlParams().Text(key_name)));
    out.clear();
    for (const auto& r : rows) {
      const SqlRow row(r);
      DataSetReport report;
      report.key_name = std::string(key_name);
      report.data_set = row.Text(0);
      report.rows_per_version = internal::RowsPerVersionFromJson(row.Text(1));
      report.rows_total = static_cast<uint64_t>(row.Int(2));
      report.reported = row.Time(3);
      report.reported_by = row.Text(4);
      out.push_back(std::move(report));
    }
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace keyward::keystore
