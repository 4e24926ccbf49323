// Leases on scheduled work in the PostgreSQL key store (KeyStore::
// AcquireLease), by the database's clock.
#include <string>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keystore/postgres_connection_pool.h"
#include "keystore/postgres_key_store.h"

namespace keyward::keystore {

absl::StatusOr<Lease> PostgresKeyStore::AcquireLease(absl::string_view name,
                                                     absl::string_view holder,
                                                     absl::Duration ttl) {
  if (name.empty() || holder.empty() || ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("a lease needs a name, a holder and a positive duration");
  }
  Lease lease;
  // Retried when the COMMIT was lost: a second run is a renewal by the
  // same holder, which keeps the token.
  KW_RETURN_IF_ERROR(pool_->InTransaction(
      "take a lease", OnUnknownOutcome::kRetry, [&](appdb::Database& db) -> absl::Status {
        // One statement: a row is inserted or, when free, expired or
        // already the holder's, updated under its row lock; a replica that
        // raced for it re-checks the WHERE against the winner's row and
        // gets nothing back.  A released lease has holder ''.
        KW_ASSIGN_OR_RETURN(
            auto rows,
            Query(db,
                  "INSERT INTO keyward_leases AS l (name, holder, fencing_token, expires) "
                  "VALUES ($1, $2, 1, now() + $3::bigint * interval '1 microsecond') "
                  "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                  "fencing_token = CASE WHEN l.holder = excluded.holder THEN l.fencing_token "
                  "ELSE l.fencing_token + 1 END, expires = excluded.expires "
                  "WHERE l.holder = excluded.holder OR l.holder = '' OR l.expires <= now() "
                  "RETURNING fencing_token, "
                  "(extract(epoch FROM expires) * 1000000)::bigint",
                  SqlParams().Text(name).Text(holder).Int(absl::ToInt64Microseconds(ttl))));
        if (!rows.empty()) {
          const SqlRow row(rows[0]);
          lease = Lease{std::string(name), std::string(holder),
                        static_cast<uint64_t>(row.Int(0)), row.Time(1)};
          return absl::OkStatus();
        }
        KW_ASSIGN_OR_RETURN(auto held, Query(db,
                                             "SELECT holder, to_char(expires AT TIME ZONE 'UTC', "
                                             "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                                             "FROM keyward_leases WHERE name = $1",
                                             SqlParams().Text(name)));
        if (held.empty()) return absl::AbortedError(absl::StrCat("lease ", name, " changed; retry"));
        const SqlRow row(held[0]);
        return absl::FailedPreconditionError(absl::StrCat("lease ", name, " is held by ",
                                                          row.Text(0), " until ", row.Text(1)));
      }));
  return lease;
}

absl::Status PostgresKeyStore::ReleaseLease(absl::string_view name, absl::string_view holder) {
  // Idempotent: retried when the COMMIT was lost.
  return pool_->InTransaction(
      "release a lease", OnUnknownOutcome::kRetry, [&](appdb::Database& db) -> absl::Status {
        return Execute(db,
                                 "UPDATE keyward_leases SET holder = '', expires = now() "
                                 "WHERE name = $1 AND holder = $2",
                                 SqlParams().Text(name).Text(holder))
            .status();
      });
}

}  // namespace keyward::keystore
