// What destroying key versions needs from the SQLite key store: the versions
// due, and a scrub of the write-ahead log so destroyed material leaves disk.
#include "absl/status/status.h"
#include "keystore/sqlite_key_store.h"
#include "keystore/sqlite_statement.h"

namespace keyward::keystore {

absl::Status SqliteKeyStore::Scrub() {
  std::lock_guard<std::mutex> lock(mu_);
  // TRUNCATE copies every frame into the database (whose freed content
  // secure_delete has zeroed) and cuts the log to nothing.  It cannot
  // finish while a reader holds an old snapshot; keywardd holds the only
  // connection, so a retry after the busy timeout is enough.
  for (int attempt = 0; attempt < 3; ++attempt) {
    int log_frames = -1, checkpointed = -1;
    const int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE,
                                             &log_frames, &checkpointed);
    if (rc == SQLITE_OK && log_frames == 0) return absl::OkStatus();
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) return SqliteError(db_, "checkpoint the WAL");
  }
  return absl::UnavailableError(
      "the key store's write-ahead log could not be truncated (another process holds it "
      "open); the destroyed key material stays in it until the next checkpoint");
}

absl::StatusOr<std::vector<VersionRef>> SqliteKeyStore::ListDueDestructions(
    absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, Prepare(
              "SELECT key_name, version FROM key_versions WHERE (state = 4 "
              "AND destroy_after_us <= ?1) OR (state = 5 AND hsm_key_id IS NOT NULL "
              "AND hsm_key_id != '') ORDER BY destroy_after_us"));
  s.Bind(1, absl::ToUnixMicros(now));
  std::vector<VersionRef> due;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    due.push_back({s.Text(0), static_cast<uint32_t>(s.Int(1))});
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, "list due destructions");
  return due;
}

}  // namespace keyward::keystore
