#include "keystore/postgres_connection_pool.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "appdb/url.h"
#include "appdb/postgres_database.h"
#include "base/status_macros.h"
#include "keyward/errors.h"

namespace keyward::keystore {
namespace {

// Every lost or refused connection comes back from appdb as kUnavailable
// (SQLSTATE classes 08 and 57P, or libpq's own CONNECTION_BAD).
bool ConnectionLost(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable;
}

}  // namespace

SqlParams& SqlParams::Text(absl::string_view s) {
  values_.emplace_back(std::in_place_type<std::string>, s);
  return *this;
}

SqlParams& SqlParams::Int(int64_t n) {
  values_.emplace_back(std::in_place_type<int64_t>, n);
  return *this;
}

SqlParams& SqlParams::OptionalBytes(absl::string_view b) {
  return b.empty() ? Null() : Bytes(b);
}

SqlParams& SqlParams::Bytes(absl::string_view b) {
  values_.emplace_back(std::in_place_type<appdb::Blob>, appdb::Blob{std::string(b)});
  return *this;
}

SqlParams& SqlParams::Null() {
  values_.emplace_back(std::in_place_type<std::monostate>);
  return *this;
}

SqlParams& SqlParams::Time(absl::Time t) { return Int(absl::ToUnixMicros(t)); }

SqlParams& SqlParams::OptionalTime(const std::optional<absl::Time>& t) {
  return t ? Time(*t) : Null();
}

bool SqlRow::IsNull(size_t col) const {
  return col >= row_.size() || std::holds_alternative<std::monostate>(row_[col]);
}

std::string SqlRow::Text(size_t col) const {
  if (col >= row_.size()) return std::string();
  if (const auto* s = std::get_if<std::string>(&row_[col])) return *s;
  if (const auto* b = std::get_if<appdb::Blob>(&row_[col])) return b->bytes;
  return std::string();
}

int64_t SqlRow::Int(size_t col) const {
  if (col >= row_.size()) return 0;
  if (const auto* n = std::get_if<int64_t>(&row_[col])) return *n;
  return 0;
}

absl::Time SqlRow::Time(size_t col) const { return absl::FromUnixMicros(Int(col)); }

std::optional<absl::Time> SqlRow::OptionalTime(size_t col) const {
  if (IsNull(col)) return std::nullopt;
  return Time(col);
}

absl::StatusOr<std::vector<appdb::ResultRow>> Query(appdb::Database& db, absl::string_view sql,
                                                    const SqlParams& params) {
  return db.Query(sql, params.values());
}

absl::StatusOr<uint64_t> Execute(appdb::Database& db, absl::string_view sql,
                                 const SqlParams& params) {
  return db.Execute(sql, params.values());
}

PgConnectionPool::PgConnectionPool(std::string url, std::string shown_url, std::string hosts,
                                   int size, absl::Duration timeout)
    : url_(std::move(url)),
      redacted_url_(appdb::RedactUrlPassword(url_)),
      shown_url_(std::move(shown_url)),
      hosts_(std::move(hosts)),
      size_(std::max(1, size)),
      timeout_(timeout) {}

PgConnectionPool::~PgConnectionPool() = default;

std::string PgConnectionPool::Shown(absl::string_view message) const {
  return absl::StrReplaceAll(message, {{redacted_url_, shown_url_}});
}

absl::Status PgConnectionPool::WithShownUrl(absl::Status s) const {
  if (s.ok() || !absl::StrContains(s.message(), redacted_url_)) return s;
  absl::Status out(s.code(), Shown(s.message()));
  s.ForEachPayload(
      [&](absl::string_view type, const absl::Cord& payload) { out.SetPayload(type, payload); });
  return out;
}

absl::Status PgConnectionPool::Unreachable(const absl::Status& cause) const {
  return absl::UnavailableError(absl::StrCat("the key store (PostgreSQL ", hosts_,
                                             ") is unreachable: ", Shown(cause.message()),
                                             "; keywardd retries; check the database"));
}

absl::StatusOr<std::unique_ptr<appdb::PostgresDatabase>> PgConnectionPool::Connect() const {
  KW_ASSIGN_OR_RETURN(std::unique_ptr<appdb::PostgresDatabase> db,
                      appdb::PostgresDatabase::Open(url_));
  // A statement that waits longer (a lock held by a stuck replica, a
  // server that stopped answering) fails instead of holding the request.
  KW_RETURN_IF_ERROR(
      Query(*db, "SELECT set_config('statement_timeout', $1, false)",
            SqlParams().Text(absl::StrCat(
                std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout_)), "ms")))
          .status());
  return db;
}

absl::StatusOr<PgConnectionPool::Checkout> PgConnectionPool::Acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  // Every holder gives its connection back within a statement timeout or
  // two; waiting longer means the store is stuck.
  const bool free = freed_.wait_for(lock, absl::ToChronoMilliseconds(2 * timeout_), [&] {
    return !idle_.empty() || open_ < size_;
  });
  if (!free) {
    return absl::UnavailableError(absl::StrCat(
        "all ", size_, " connections to the key store are busy; raise the pool size or check "
        "for slow statements in the database"));
  }
  if (!idle_.empty()) {
    Checkout out{std::move(idle_.back()), generation_};
    idle_.pop_back();
    return out;
  }
  ++open_;
  const uint64_t generation = generation_;
  lock.unlock();
  auto db = Connect();
  if (!db.ok()) {
    lock.lock();
    --open_;
    freed_.notify_one();
    return ConnectionLost(db.status()) ? Unreachable(db.status()) : db.status();
  }
  return Checkout{std::move(*db), generation};
}

void PgConnectionPool::Release(Checkout checkout, bool broken) {
  std::vector<std::unique_ptr<appdb::PostgresDatabase>> closing;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (broken && checkout.generation == generation_) {
      ++generation_;
      closing = std::move(idle_);
      idle_.clear();
      open_ -= static_cast<int>(closing.size());
    }
    if (broken || checkout.generation != generation_) {
      closing.push_back(std::move(checkout.db));
      --open_;
    } else {
      idle_.push_back(std::move(checkout.db));
    }
  }
  freed_.notify_all();
  closing.clear();  // PQfinish outside the lock
}

absl::Status PgConnectionPool::InTransaction(
    absl::string_view what, OnUnknownOutcome on_unknown,
    absl::FunctionRef<absl::Status(appdb::Database&)> body) {
  absl::Status last;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto checkout = Acquire();
    if (!checkout.ok()) return WithShownUrl(checkout.status());
    appdb::Database& db = *checkout->db;
    absl::Status s = db.Begin();
    if (s.ok()) s = body(db);
    // COMMIT must never be cancelled by statement_timeout: PostgreSQL would
    // cancel only its wait for the synchronous standby and report the
    // commit done, acknowledging what the standby may not have.  A COMMIT
    // that cannot finish ends with its connection instead (unknown outcome).
    if (s.ok()) s = Execute(db, "SET LOCAL statement_timeout = 0", SqlParams()).status();
    if (!s.ok()) {
      if (ConnectionLost(s)) {
        // Nothing was committed: the server rolls back a transaction whose
        // connection ended, so running it again is safe.
        Release(std::move(*checkout), /*broken=*/true);
        last = s;
        continue;
      }
      const bool rolled_back = db.Rollback().ok();
      Release(std::move(*checkout), /*broken=*/!rolled_back);
      return WithShownUrl(s);
    }
    s = db.Commit();
    if (s.ok() || !ConnectionLost(s)) {
      Release(std::move(*checkout), /*broken=*/false);
      return WithShownUrl(s);
    }
    Release(std::move(*checkout), /*broken=*/true);
    last = s;
    if (on_unknown == OnUnknownOutcome::kRetry) continue;
    // Not UNAVAILABLE: a caller told "retry" would repeat a change that may
    // have committed (a second rotation, say).
    return MakeError(absl::StatusCode::kUnknown, ErrorCode::kMayHaveBeenApplied,
                     absl::StrCat("the key store (PostgreSQL ", hosts_,
                                  ") lost the connection while committing (", what,
                                  "), so whether it took effect is unknown: ",
                                  Shown(s.message()), "; re-read before repeating it"));
  }
  return Unreachable(last);
}

absl::Status PgConnectionPool::Run(absl::FunctionRef<absl::Status(appdb::Database&)> body) {
  absl::Status last;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto checkout = Acquire();
    if (!checkout.ok()) return WithShownUrl(checkout.status());
    absl::Status s = body(*checkout->db);
    const bool lost = ConnectionLost(s);
    Release(std::move(*checkout), lost);
    if (!lost) return WithShownUrl(s);
    last = s;
  }
  return Unreachable(last);
}

}  // namespace keyward::keystore
